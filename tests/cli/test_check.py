"""`check`: exit 0 when healthy; otherwise each problem in plain words and exit 1."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import CLI, assert_user_error, database_file, seed


def test_check_reports_health_or_each_problem(cli: CLI, tmp_path: Path) -> None:
    a_file = tmp_path / "app_schema.py"
    fresh = cli("check")
    assert_user_error(fresh, 1)
    assert "PROBLEM  control plane" in fresh.stdout
    assert "no control plane at" in fresh.stdout
    assert not cli.data_dir.exists()  # check created nothing
    assert cli("init").code == 0
    healthy, bad_config, data_dir_file, bad_packages = cli.under(
        [
            {"TENANCY_PACKAGES": "app_schema:V2"},
            {"TENANCY_CACHE_TTL": "soon"},
            {"TENANCY_DATA_DIR": str(a_file)},
            {"TENANCY_PACKAGES": "no_such_module:PACKAGES"},
        ],
        "check",
    )
    assert healthy.code == 0, healthy
    assert "app_schema:V2: notes@2" in healthy.stdout
    assert "control plane" in healthy.stdout
    assert healthy.stdout.rstrip().endswith("healthy")
    assert "PROBLEM" not in healthy.stdout

    for result in (bad_config, data_dir_file, bad_packages):
        assert_user_error(result, 1)
        assert "problem(s) found" in result.stdout
    assert "PROBLEM  configuration" in bad_config.stdout
    assert "TENANCY_CACHE_TTL: cannot parse 'soon'" in bad_config.stdout
    assert f"{a_file} exists and is not a directory" in data_dir_file.stdout
    assert "TENANCY_PACKAGES: cannot import module 'no_such_module'" in bad_packages.stdout


def test_check_reports_tenants_missing_their_database_and_a_lost_control_plane(
    cli: CLI,
) -> None:
    tenants = seed(cli.data_dir, ["acme", "beta"])
    database_file(cli.data_dir, tenants["beta"]).unlink()
    missing = cli("check")
    assert_user_error(missing, 1)
    assert "1 tenant(s) whose database is missing (beta)" in missing.stdout
    (cli.data_dir / "control-plane.db").unlink()
    lost = cli("check")
    assert_user_error(lost, 1)
    assert "PROBLEM  control plane" in lost.stdout
    assert "tenant-middleware recover" in lost.stdout
    assert not (cli.data_dir / "control-plane.db").exists()  # check created nothing
