"""Without its extra, each integration says which one to install; the base runtime (with a
fan-out and no telemetry) never imports arq, Celery or OpenTelemetry."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


@pytest.mark.parametrize(
    ("module", "blocked", "extra"),
    [("arq", "arq", "arq"), ("celery", "celery", "celery"), ("otel", "opentelemetry", "otel")],
)
def test_an_integration_without_its_extra_names_it(module: str, blocked: str, extra: str) -> None:
    # `None` in sys.modules makes the import fail as if the package were not installed.
    done = run(
        f"import sys; sys.modules[{blocked!r}] = None\n"
        f"import tenant_middleware.integrations.{module}\n"
    )
    assert done.returncode == 1
    assert f"pip install 'tenant-middleware[{extra}]'" in done.stderr


def test_the_base_runtime_imports_none_of_them() -> None:
    done = run(
        "import asyncio, sys, tempfile\n"
        "from tenant_middleware import Tenancy, TenancyConfig\n"
        "async def main():\n"
        "    with tempfile.TemporaryDirectory() as folder:\n"
        "        async with Tenancy(TenancyConfig(data_dir=folder)) as tenancy:\n"
        "            await tenancy.provision('acme')\n"
        "            async def slug(tenant): return tenant.slug\n"
        "            report = await tenancy.for_each_tenant(slug)\n"
        "            assert [r.value for r in report] == ['acme'], report\n"
        "asyncio.run(main())\n"
        "loaded = [m for m in ('arq', 'celery', 'kombu', 'redis', 'opentelemetry')\n"
        "          if m in sys.modules]\n"
        "print(loaded)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
