"""Envelopes: round trip, the key id inside, rotation, and loud failure on anything amiss."""

from __future__ import annotations

import pytest

from tenant_middleware import CredentialError
from tenant_middleware.secrets import KeyRing, Secret, key_id_of, token_binding
from tests.secrets.conftest import KEY1, KEY2, TENANT_A, TENANT_B, TOKEN, b64

AD = token_binding(TENANT_A)


def _ring(*keys: tuple[str, bytes]) -> KeyRing:
    return KeyRing(list(keys))


def test_round_trip_returns_a_secret_with_the_plaintext() -> None:
    ring = _ring(("k1", KEY1))
    for text in (TOKEN, "", "jeton-é-✓"):
        decrypted = ring.decrypt(ring.encrypt(text, associated_data=AD), associated_data=AD)
        assert isinstance(decrypted, Secret)
        assert decrypted.reveal() == text


def test_envelopes_hide_the_plaintext_and_never_repeat() -> None:
    ring = _ring(("k1", KEY1))
    first = ring.encrypt(TOKEN, associated_data=AD)
    second = ring.encrypt(Secret(TOKEN), associated_data=AD)
    assert first != second  # a fresh nonce each time
    assert first[4 + 2 : 4 + 2 + 12] != second[4 + 2 : 4 + 2 + 12]
    for envelope in (first, second):
        assert TOKEN.encode() not in envelope
        assert b"acme" not in envelope


def test_the_envelope_carries_its_key_id_in_a_compact_header() -> None:
    ring = _ring(("k2", KEY2), ("k1", KEY1))
    envelope = ring.encrypt(TOKEN, associated_data=AD)
    assert envelope.startswith(b"tm1" + bytes([2]) + b"k2")
    assert len(envelope) == 3 + 1 + 2 + 12 + len(TOKEN) + 16
    assert key_id_of(envelope) == "k2"


def test_blob_columns_may_come_back_as_bytearray_or_memoryview() -> None:
    ring = _ring(("k1", KEY1))
    envelope = ring.encrypt(TOKEN, associated_data=AD)
    for blob in (bytearray(envelope), memoryview(envelope)):
        assert ring.decrypt(blob, associated_data=AD).reveal() == TOKEN  # type: ignore[arg-type]


def test_rotation_adds_a_key_moves_the_tokens_then_drops_the_old_key() -> None:
    old = _ring(("k1", KEY1)).encrypt(TOKEN, associated_data=AD)

    both = _ring(("k2", KEY2), ("k1", KEY1))
    assert both.decrypt(old, associated_data=AD).reveal() == TOKEN
    assert both.needs_rotation(old)
    moved = both.reencrypt(old, associated_data=AD)
    assert key_id_of(moved) == "k2"
    assert not both.needs_rotation(moved)
    assert both.decrypt(moved, associated_data=AD).reveal() == TOKEN

    only_new = _ring(("k2", KEY2))
    assert only_new.decrypt(moved, associated_data=AD).reveal() == TOKEN
    assert only_new.needs_rotation(old)
    for attempt in (only_new.decrypt, only_new.reencrypt):
        with pytest.raises(CredentialError) as caught:
            attempt(old, associated_data=AD)
        assert caught.value.key_id == "k1"
        message = str(caught.value)
        assert "'k1'" in message
        assert "not configured" in message
        assert b64(KEY1) not in message
        assert b64(KEY2) not in message
        assert TOKEN not in message


def test_another_key_under_the_same_id_fails_loudly() -> None:
    envelope = _ring(("k1", KEY1)).encrypt(TOKEN, associated_data=AD)
    with pytest.raises(CredentialError, match="failed authentication") as caught:
        _ring(("k1", KEY2)).decrypt(envelope, associated_data=AD)
    assert caught.value.key_id == "k1"


def test_a_token_copied_to_another_tenant_does_not_open() -> None:
    ring = _ring(("k1", KEY1))
    envelope = ring.encrypt(TOKEN, associated_data=token_binding(TENANT_A))
    for attempt in (ring.decrypt, ring.reencrypt):
        with pytest.raises(CredentialError, match="failed authentication"):
            attempt(envelope, associated_data=token_binding(TENANT_B))


def test_every_flipped_bit_position_is_detected() -> None:
    ring = _ring(("k1", KEY1), ("k0", KEY2))  # "k0" too: a flipped id must not find a key
    envelope = ring.encrypt(TOKEN, associated_data=AD)
    for index in range(len(envelope)):
        for bit in (0x01, 0x80):
            tampered = bytearray(envelope)
            tampered[index] ^= bit
            with pytest.raises(CredentialError):
                ring.decrypt(bytes(tampered), associated_data=AD)


def test_truncated_and_extended_envelopes_are_rejected() -> None:
    ring = _ring(("k1", KEY1))
    envelope = ring.encrypt(TOKEN, associated_data=AD)
    for size in range(len(envelope)):
        with pytest.raises(CredentialError):
            ring.decrypt(envelope[:size], associated_data=AD)
    with pytest.raises(CredentialError):
        ring.decrypt(envelope + b"\x00", associated_data=AD)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (TOKEN.encode(), "not a credential envelope"),
        (b"tm2\x02k1" + bytes(40), "version b'2' is not supported"),
        (b"tm1\x00" + bytes(40), "key id is malformed"),
        (b"tm1\x02k\xff" + bytes(40), "key id is malformed"),
    ],
)
def test_what_is_not_an_envelope_is_named(blob: bytes, message: str) -> None:
    ring = _ring(("k1", KEY1))
    with pytest.raises(CredentialError, match=message):
        ring.decrypt(blob, associated_data=AD)
    with pytest.raises(CredentialError, match=message):
        ring.needs_rotation(blob)


def test_a_plaintext_string_in_the_column_is_not_an_envelope() -> None:
    with pytest.raises(CredentialError, match="bytes, not str"):
        key_id_of(TOKEN)  # type: ignore[arg-type]


def test_associated_data_is_required() -> None:
    ring = _ring(("k1", KEY1))
    envelope = ring.encrypt(TOKEN, associated_data=AD)
    with pytest.raises(ValueError, match="associated_data must be non-empty"):
        ring.encrypt(TOKEN, associated_data=b"")
    with pytest.raises(ValueError, match="associated_data must be non-empty"):
        ring.decrypt(envelope, associated_data=b"")
    with pytest.raises(ValueError, match="tenant id"):
        token_binding("")


def test_token_bindings_differ_per_tenant() -> None:
    assert token_binding(TENANT_A) != token_binding(TENANT_B)
    assert token_binding(TENANT_A).endswith(TENANT_A.encode())
