"""`generate-key` and `rotate-keys`: envelopes seeded into the control plane, rotated by the CLI."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tenant_middleware import Tenancy
from tenant_middleware.secrets import KeyRing, key_id_of, token_binding
from tests.cli.conftest import CLI, assert_user_error, seed, with_tenancy

KEY0 = bytes(range(200, 232))
KEY1 = bytes(range(32))
TOKEN = "eyJhbGciOiJFZERTQSJ9.database-token.c2lnbmF0dXJl"


def _entry(key_id: str, key: bytes) -> str:
    return f"{key_id}:{_b64(key)}"


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


def _store(data_dir: Path, envelopes: dict[str, tuple[KeyRing, str]]) -> None:
    """Give each tenant (by id) a token sealed by the ring given."""

    async def write(tenancy: Tenancy) -> None:
        for tenant_id, (ring, token) in envelopes.items():
            blob = ring.encrypt(token, associated_data=token_binding(tenant_id))
            await tenancy.registry.set_credentials(
                tenant_id, database_url=f"libsql://{tenant_id}.example", token_ciphertext=blob
            )

    with_tenancy(data_dir, write)


def _stored(data_dir: Path) -> dict[str, tuple[str | None, bytes | None]]:
    async def read(tenancy: Tenancy) -> dict[str, tuple[str | None, bytes | None]]:
        return {
            t.slug: await tenancy.registry.get_credentials(t.id)
            for t in await tenancy.all_tenants()
        }

    return with_tenancy(data_dir, read)


def test_generate_key_prints_an_entry_the_key_ring_accepts(cli: CLI) -> None:
    first, second = cli.many([["generate-key"], ["generate-key", "--id", "k2"]])
    assert first.code == second.code == 0, (first, second)
    entry = first.stdout.strip()
    assert KeyRing.parse(entry).key_ids == (entry.partition(":")[0],)
    assert second.stdout.startswith("k2:")
    assert KeyRing.parse(f"{second.stdout.strip()},{entry}").active_key_id == "k2"
    assert "TENANCY_ENCRYPTION_KEYS" in first.stderr
    assert not (cli.data_dir / "control-plane.db").exists()  # no settings, no control plane
    assert_user_error(cli("generate-key", "--id", "bad id!"), 2, "--id")
    help_text = cli("--help")
    assert "generate-key" in help_text.stdout
    assert "rotate-keys" in help_text.stdout


def test_rotate_keys_rotates_reports_failures_and_reruns_idempotently(cli: CLI) -> None:
    tenants = seed(cli.data_dir, ["acme", "globex", "initech", "umbrella"])
    old, lost = KeyRing([("k1", KEY1)]), KeyRing([("k0", KEY0)])
    _store(
        cli.data_dir,
        {
            tenants["acme"].id: (old, TOKEN + "a"),
            tenants["globex"].id: (old, TOKEN + "g"),
            tenants["initech"].id: (lost, TOKEN + "i"),
        },
    )
    new_entry = cli("generate-key", "--id", "k2").stdout.strip()
    keys = {"TENANCY_ENCRYPTION_KEYS": f"{new_entry},{_entry('k1', KEY1)}"}
    before = _stored(cli.data_dir)

    plan = cli("rotate-keys", "--dry-run", "--json", env=keys)
    assert plan.code == 1, plan
    report = json.loads(plan.stdout)
    assert (report["dry_run"], report["rotated"], report["failed"]) == (True, 2, 1)
    assert report["before"] == {"k0": 1, "k1": 2}
    assert _stored(cli.data_dir) == before

    first = cli("rotate-keys", env=keys)
    assert first.code == 1, first
    assert "3 stored credentials: rotated 2 to key k2, 0 already current, 1 failed" in first.stdout
    assert "key k1: 2 before, 0 after" in first.stdout
    assert "key k2: 0 before, 2 after" in first.stdout
    failure = next(line for line in first.stdout.splitlines() if line.startswith("failed:"))
    assert tenants["initech"].id in failure
    assert "key k0" in failure
    assert "Traceback" not in first.stderr
    for secret in (new_entry.partition(":")[2], _b64(KEY1), _b64(KEY0), TOKEN):
        assert secret not in first.stdout + first.stderr + plan.stdout + plan.stderr

    after = _stored(cli.data_dir)
    ring = KeyRing.parse(keys["TENANCY_ENCRYPTION_KEYS"])
    for slug in ("acme", "globex"):
        url, blob = after[slug]
        assert blob is not None
        assert key_id_of(blob) == "k2"
        assert url == before[slug][0]
        binding = token_binding(tenants[slug].id)
        assert ring.decrypt(blob, associated_data=binding).reveal() == TOKEN + slug[0]
    assert after["initech"] == before["initech"]
    assert after["umbrella"] == (None, None)

    # The lost key comes back for one run: everything ends under k2; then nothing is left.
    with_lost = {
        "TENANCY_ENCRYPTION_KEYS": f"{keys['TENANCY_ENCRYPTION_KEYS']},{_entry('k0', KEY0)}"
    }
    second = cli("rotate-keys", "--json", env=with_lost)
    assert second.code == 0, second
    assert json.loads(second.stdout)["after"] == {"k2": 3}
    third = cli("rotate-keys", "--json", env=keys)
    assert third.code == 0, third
    assert (json.loads(third.stdout)["rotated"], json.loads(third.stdout)["current"]) == (0, 3)


def test_rotate_keys_without_keys_names_the_setting(cli: CLI) -> None:
    assert cli("init").code == 0
    assert_user_error(cli("rotate-keys"), 1, "TENANCY_ENCRYPTION_KEYS")
