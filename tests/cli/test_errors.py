"""Operator mistakes end with a message and an exit code, never a traceback; bugs still show one."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import CLI, assert_user_error, seed

_UUID = "0b0b0b0b-0000-4000-8000-000000000000"


def test_unknown_tenants_and_invalid_identifiers_exit_1(cli: CLI) -> None:
    seed(cli.data_dir, ["acme"])
    results = cli.many(
        [
            ["show", "nope"],
            ["suspend", _UUID],
            ["provision", "Bad_Slug!"],
            ["migrate", "--tenant", "nope", "--packages", "app_schema:V1"],
        ]
    )
    unknown_slug, unknown_id, bad_slug, unknown_target = results
    assert_user_error(unknown_slug, 1, "tenant-middleware: error: no tenant 'nope'")
    assert_user_error(unknown_id, 1, f"no tenant '{_UUID}'")
    assert_user_error(bad_slug, 1, "invalid slug 'Bad_Slug!'", "RFC 1123")
    assert_user_error(unknown_target, 1, "no tenant 'nope'")
    assert all(result.stdout == "" for result in results)


def test_bad_arguments_are_usage_errors(cli: CLI) -> None:
    results = cli.many(
        [
            ["list", "--status", "bogus"],
            ["provision", "acme", "--metadata", "{oops"],
            ["migrate", "--concurrency", "0"],
        ]
    )
    status, not_json, concurrency = results
    assert_user_error(status, 2, "invalid choice: 'bogus'")
    assert_user_error(not_json, 2, "not valid JSON")
    assert_user_error(concurrency, 2, "must be at least 1")


def test_unreachable_control_planes_and_bad_settings_are_named(cli: CLI, tmp_path: Path) -> None:
    results = cli.under(
        [
            {"TENANCY_CONTROL_PLANE_URL": "file:/proc/nonexistent/x.db"},
            {"TENANCY_CONTROL_PLANE_URL": str(tmp_path)},
            {"TENANCY_CONTROL_PLANE_URL": "http://127.0.0.1:9"},
            {"TENANCY_CACHE_TTL": "soon"},
        ],
        "list",
    )
    missing_parent, directory, remote, ttl = results
    assert_user_error(
        missing_parent,
        1,
        "no control plane at /proc/nonexistent/x.db",
        "TENANCY_CONTROL_PLANE_URL",
    )
    assert_user_error(directory, 1, f"{tmp_path} is a directory, not a database file")
    assert_user_error(
        remote,
        1,
        "cannot open the control plane http://127.0.0.1:9",
        "TENANCY_CONTROL_PLANE_URL",
    )
    assert_user_error(ttl, 1, "invalid configuration: TENANCY_CACHE_TTL: cannot parse 'soon'")


def test_schema_packages_that_cannot_be_loaded(cli: CLI) -> None:
    assert cli("init").code == 0
    results = cli.many(
        [
            ["migrate"],
            ["migrate", "--packages", "no_such_module:PACKAGES"],
            ["list", "--packages", "app_schema:NOT_PACKAGES"],
        ]
    )
    none_given, no_module, wrong_type = results
    assert_user_error(none_given, 2, "migrate needs the app's schema packages", "TENANCY_PACKAGES")
    assert_user_error(no_module, 1, "--packages: cannot import module 'no_such_module'")
    assert_user_error(wrong_type, 1, "holds a str, not a SchemaPackage")


def test_a_bug_in_the_apps_module_still_shows_its_traceback(cli: CLI) -> None:
    result = cli("list", "--packages", "broken_schema:PACKAGES")
    assert result.code == 1
    assert "Traceback" in result.stderr
    assert "RuntimeError: a bug in the app's schema module" in result.stderr
