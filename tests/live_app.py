"""An app served by a real uvicorn subprocess: wait until it answers, stop it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest


def wait_until_healthy(
    base: str, process: subprocess.Popen[bytes], log_path: Path, *, within: float = 20.0
) -> None:
    """Poll `base/healthz` until it answers 200; fail with the server's log if it exits or
    does not answer `within` seconds."""
    deadline = time.monotonic() + within
    with httpx.Client(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log = log_path.read_text(errors="replace")
                pytest.fail(f"uvicorn exited with {process.returncode}:\n{log}")
            try:
                if client.get(f"{base}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    log = log_path.read_text(errors="replace")
    pytest.fail(f"{base}/healthz did not answer in {within:g} s:\n{log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server; kill it if it does not exit within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
