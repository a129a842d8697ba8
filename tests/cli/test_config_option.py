"""One configuration for app and CLI: `--config MODULE:ATTR` names the app's settings (from a
`.env` file, nested in the app's own `Settings`); the CLI says which control plane it uses and
never creates one by accident; `check` fails when a configured server is down."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI

from tenant_middleware import Tenancy, TenancyMiddleware
from tenant_middleware.integrations.fastapi import CurrentTenant
from tests.cli.conftest import CLI, assert_user_error
from tests.conftest import client_for
from tests.sqld import running_sqld
from tests.sqld_provisioner.conftest import sqld_settings

# An app's settings module, as a FastAPI project keeps it: its own Settings, the tenancy's
# nested, values in a .env file of the working directory.
SETTINGS_MODULE = """
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tenant_middleware.settings import TenancySettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="APP_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )
    title: str = "projects"
    tenancy: TenancySettings = Field(default_factory=TenancySettings)


settings = Settings()
tenancy_settings = TenancySettings()
config = tenancy_settings.to_config()
"""

DOTENV = {
    # Read by TenancySettings itself (its TENANCY_ prefix).
    "dotenv": "TENANCY_DATA_DIR=from-dotenv\nTENANCY_BASE_DOMAINS=projects.test\n",
    # Read by the app's Settings, into its nested tenancy settings.
    "nested": "APP_TENANCY__DATA_DIR=from-app-settings\nAPP_TENANCY__BASE_DOMAINS=projects.test\n",
}


@pytest.fixture
def project(cli: CLI) -> CLI:
    """The CLI in a project directory, with no TENANCY_* variable set."""
    cli.env.pop("TENANCY_DATA_DIR")
    return cli


def app_module(cli: CLI, name: str, monkeypatch: pytest.MonkeyPatch) -> object:
    """Import the project's settings module in this process, from its working directory."""
    (cli.workdir / f"{name}.py").write_text(SETTINGS_MODULE)
    monkeypatch.chdir(cli.workdir)
    monkeypatch.syspath_prepend(str(cli.workdir))
    for variable in [v for v in __import__("os").environ if v.startswith(("TENANCY_", "APP_"))]:
        monkeypatch.delenv(variable)
    module = importlib.import_module(name)
    monkeypatch.setitem(sys.modules, name, module)
    return module


@pytest.mark.parametrize(("kind", "attribute"), [("dotenv", "config"), ("nested", "settings")])
async def test_settings_reach_the_app_and_the_cli(
    project: CLI, monkeypatch: pytest.MonkeyPatch, kind: str, attribute: str
) -> None:
    (project.workdir / ".env").write_text(DOTENV[kind])
    name = f"app_settings_{kind}"
    module = app_module(project, name, monkeypatch)
    reference = f"{name}:{attribute}"

    provisioned = project("--config", reference, "provision", "acme")
    assert provisioned.code == 0, provisioned
    data_dir = project.workdir / ("from-dotenv" if kind == "dotenv" else "from-app-settings")
    assert f"control plane: {data_dir / 'control-plane.db'} (from --config {reference})" in (
        provisioned.stderr
    )
    listed = project("list", "--config", reference, "--json")
    assert listed.code == 0, listed
    assert '"slug": "acme"' in listed.stdout

    settings = getattr(module, attribute)
    config = settings if kind == "dotenv" else settings.tenancy.to_config()
    assert config.data_dir.resolve() == data_dir
    app = FastAPI()
    async with Tenancy(config) as tenancy:
        app.add_middleware(TenancyMiddleware, tenancy=tenancy)

        @app.get("/whoami")
        async def whoami(tenant: CurrentTenant) -> dict[str, str]:
            return {"slug": tenant.slug}

        async with client_for(app, "acme.projects.test") as http:
            response = await http.get("/whoami")
    assert response.json() == {"slug": "acme"}  # the tenant the CLI made, found by the app


def test_config_accepts_a_factory_and_refuses_other_objects(cli: CLI) -> None:
    (cli.workdir / "factory_app.py").write_text(
        "from tenant_middleware import TenancyConfig\n"
        "def make():\n    return TenancyConfig(data_dir='factory-data')\n"
        "NOT_A_CONFIG = 42\n"
    )
    made = cli("--config", "factory_app:make", "init")
    assert made.code == 0, made
    assert (cli.workdir / "factory-data" / "control-plane.db").exists()
    assert_user_error(
        cli("list", "--config", "factory_app:NOT_A_CONFIG"), 1, "is a int, not a TenancyConfig"
    )
    assert_user_error(cli("list", "--config", "nope"), 1, "expected module:attribute")


def test_the_cli_never_creates_a_control_plane_implicitly(cli: CLI) -> None:
    listed = cli("list")
    assert_user_error(listed, 1, "no control plane at", "TENANCY_DATA_DIR", "init")
    assert not cli.data_dir.exists()
    initialised = cli("init")
    assert initialised.code == 0, initialised
    assert f"control plane: {cli.data_dir / 'control-plane.db'} (from TENANCY_DATA_DIR)" in (
        initialised.stderr
    )
    assert cli("list").code == 0


def test_check_fails_when_the_sqld_server_is_down(cli: CLI, tmp_path: Path) -> None:
    with running_sqld(tmp_path / "own-sqld") as server:
        env = {f"TENANCY_{k.upper()}": str(v) for k, v in sqld_settings(server).items()}
        assert cli("init", env=env).code == 0
        up = cli("check", env=env)
    down = cli("check", env=env)  # the same settings, the server stopped
    assert up.code == 0, up
    assert "sqld admin API" in up.stdout
    assert down.code == 1, down
    assert "PROBLEM  sqld admin API" in down.stdout
    assert down.stdout.rstrip().endswith("problem(s) found")
