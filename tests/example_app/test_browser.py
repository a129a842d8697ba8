"""The example app in a real browser: uvicorn in a subprocess, Debian's headless Chromium.

Two tenants sign up on the landing page, each adds a note on its own page (path source,
``/t/<slug>/``) and sees only its own notes. A screenshot per tenant lands in
``test-artifacts/``. Selenium drives Chromium through Debian's ``chromedriver``, given by path,
so Selenium Manager never runs and nothing is downloaded; the browser only talks to 127.0.0.1.

Never skipped: without Chromium the test fails and says what to install (CI installs it).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from tests.live_app import stop, wait_until_healthy

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = (
    "apt-get update && apt-get install -y chromium chromium-driver "
    "(Debian's packages; .ci/run installs them)"
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WAIT = 30.0  # seconds for any one page or element (an upper bound: a loaded CI box is slow)

# Headless, no sandbox (CI runs as root), and no traffic of Chromium's own: no background
# requests, and every host name but 127.0.0.1 fails to resolve.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1000,800",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The example app under uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    env = {**os.environ, "TENANCY_DATA_DIR": str(tmp_path / "data")}
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "example_app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process, log_path)
        yield base
    finally:
        stop(process)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Debian's Chromium, headless, with a fresh profile, driven by Debian's chromedriver."""
    # Selenium's wire log copies page text into DEBUG records, and the sign-up page shows the
    # token the app hands its new tenant: keep that test tooling's chatter out of the log.
    selenium_log = logging.getLogger("selenium")
    previous_level = selenium_log.level
    selenium_log.setLevel(logging.INFO)
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.is_file():
            pytest.fail(f"{path} is missing (package {package}); install it: {INSTALL_HINT}")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    # The driver's path is given, so Selenium Manager is never asked for (or to download) one.
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log")
    )
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(WAIT)
        yield driver
    finally:
        driver.quit()
        selenium_log.setLevel(previous_level)


def submit_and_wait(driver: webdriver.Chrome, button_selector: str) -> None:
    """Click a form's button and wait until the next page has loaded."""
    old_page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, button_selector).click()
    wait = WebDriverWait(driver, WAIT)
    wait.until(lambda _: is_gone(old_page))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def is_gone(element: WebElement) -> bool:
    """Whether the page holding `element` was replaced. Chromium reports a node of a replaced
    document either as stale or, mid-navigation, as "does not belong to the document"."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


def sign_up(driver: webdriver.Chrome, base: str, slug: str) -> None:
    """Sign up on the landing page's form; the answer is JSON, which Chromium shows as text."""
    driver.get(f"{base}/")
    driver.find_element(By.NAME, "slug").send_keys(slug)
    submit_and_wait(driver, "form[action='/signup'] button")
    answer = json.loads(driver.find_element(By.TAG_NAME, "pre").text)
    assert answer["slug"] == slug
    assert answer["token"]


def add_note(driver: webdriver.Chrome, base: str, slug: str, body: str) -> None:
    """Open the tenant's page by path, add a note with its form and follow the redirect."""
    driver.get(f"{base}/t/{slug}/")
    assert driver.find_element(By.ID, "slug").text == slug
    driver.find_element(By.NAME, "body").send_keys(body)
    submit_and_wait(driver, "#add")
    assert driver.current_url == f"{base}/t/{slug}/"


def assert_only_own_notes(driver: webdriver.Chrome, slug: str, notes: dict[str, str]) -> None:
    assert driver.find_element(By.ID, "slug").text == slug
    assert [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#notes li")] == [notes[slug]]
    for other, other_body in notes.items():
        if other != slug:
            assert other_body not in driver.page_source, f"{slug} sees {other}'s note"


def save_screenshot(driver: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"browser-{name}.png"
    path.unlink(missing_ok=True)
    assert driver.save_screenshot(str(path))
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), f"{path} is not a PNG"
    assert len(data) > len(PNG_MAGIC)
    return path


def test_each_tenant_sees_only_its_own_notes_in_a_browser(
    browser: webdriver.Chrome, server: str
) -> None:
    notes = {"hooli": "hooli: ship the box", "initech": "initech: TPS report cover sheets"}
    for slug in notes:
        sign_up(browser, server, slug)
    for slug, body in notes.items():
        add_note(browser, server, slug, body)
        assert_only_own_notes(browser, slug, notes)  # the page after the redirect

    # Again now that both tenants have a note: the first must not see the second's.
    for slug in notes:
        browser.get(f"{server}/t/{slug}/")
        assert_only_own_notes(browser, slug, notes)
        save_screenshot(browser, slug)
