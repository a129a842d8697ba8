"""Key material and plaintext tokens never show in repr, str, error messages or log records."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest

from tenant_middleware import CredentialError
from tenant_middleware.secrets import KeyRing, Secret, token_binding
from tests.secrets.conftest import KEY1, KEY2, TENANT_A, TENANT_B, TOKEN, b64

AD = token_binding(TENANT_A)


def _leaks(text: str) -> list[str]:
    needles = [TOKEN, b64(KEY1), b64(KEY2), repr(KEY1), repr(KEY2), KEY1.hex(), KEY2.hex()]
    return [needle for needle in needles if needle in text]


def test_a_secret_shows_as_stars_everywhere_but_reveal() -> None:
    secret = Secret(TOKEN)
    assert repr(secret) == "Secret('***')"
    assert str(secret) == "***"
    # %-formatting is what logging does with its arguments.
    percent = "%s %r" % (secret, secret)  # noqa: UP031
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", percent]
    shown.append(repr([secret, {"token": secret}]))
    assert _leaks(" ".join(shown)) == []
    assert secret.reveal() == TOKEN


def test_secrets_compare_by_value_copy_as_themselves_and_refuse_pickling() -> None:
    secret = Secret(TOKEN)
    assert secret == Secret(TOKEN)
    assert secret != Secret(TOKEN + "x")
    assert secret != TOKEN  # a plain string never equals a Secret
    assert copy.deepcopy(secret) is secret
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    with pytest.raises(TypeError, match="holds a str"):
        Secret(TOKEN.encode())  # type: ignore[arg-type]


def test_a_key_ring_shows_its_ids_and_nothing_else() -> None:
    ring = KeyRing.parse(f"k2:{b64(KEY2)},k1:{b64(KEY1)}")
    assert repr(ring) == "KeyRing(active='k2', key_ids=('k2', 'k1'))"
    assert str(ring) == repr(ring)
    assert _leaks(repr(ring) + str(ring) + f"{ring}") == []
    assert not hasattr(ring, "__dict__")  # no attribute for key bytes to hide in


def test_log_records_of_a_whole_rotation_hold_nothing_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("tenant_middleware.test")
    ring = KeyRing.parse(f"k1:{b64(KEY1)}")
    rotated = KeyRing.parse(f"k2:{b64(KEY2)},k1:{b64(KEY1)}")

    old = ring.encrypt(TOKEN, associated_data=AD)
    new = rotated.reencrypt(old, associated_data=AD)
    token = rotated.decrypt(new, associated_data=AD)
    log.info("opening pool with token %s (%r) under %r", token, token, rotated)
    for attempt in (
        lambda: KeyRing.parse(f"k2:{b64(KEY2)}").decrypt(old, associated_data=AD),
        lambda: rotated.decrypt(new, associated_data=token_binding(TENANT_B)),
        lambda: KeyRing.parse(f"k2:{b64(KEY2)},k2:{b64(KEY1)}"),
    ):
        try:
            attempt()
        except (CredentialError, ValueError):
            log.exception("credential step failed")
        else:
            pytest.fail("the step should have failed")

    assert len(caplog.records) == 4
    assert "Secret('***')" in caplog.text
    assert "not configured" in caplog.text
    assert "Traceback" in caplog.text
    assert _leaks(caplog.text) == []
    assert all(_leaks(record.getMessage()) == [] for record in caplog.records)
