"""`TENANCY_ENCRYPTION_KEYS` parsing and key generation; errors name the setting, not the key."""

from __future__ import annotations

import base64

import pytest

from tenant_middleware import ConfigError
from tenant_middleware.secrets import KeyRing, generate_key
from tests.secrets.conftest import KEY1, KEY2, b64

_PLUS_SLASH = bytes([0xFB, 0xFF] * 16)  # standard base64 spells it with '+' and '/'


def test_the_first_entry_is_the_active_key() -> None:
    ring = KeyRing.parse(f"k2:{b64(KEY2)}, k1:{b64(KEY1)}")
    assert ring.active_key_id == "k2"
    assert ring.key_ids == ("k2", "k1")


def test_padded_keys_and_stray_commas_are_accepted() -> None:
    padded = base64.urlsafe_b64encode(KEY1).decode()
    assert padded.endswith("=")
    ring = KeyRing.parse(f" k1:{padded} ,")
    assert ring.key_ids == ("k1",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("", "no key configured", id="empty"),
        pytest.param(" , ", "no key configured", id="only-commas"),
        pytest.param(b64(KEY1), "entry 1 is not of the form id:base64url-key", id="no-id"),
        pytest.param(f"k1:{b64(KEY1)},k 2:{b64(KEY2)}", "entry 2: a key id is", id="bad-id"),
        pytest.param(f"{'k' * 33}:{b64(KEY1)}", "entry 1: a key id is", id="long-id"),
        pytest.param(f"{b64(KEY1)}:k1", "entry 1: a key id is", id="swapped"),
        pytest.param(f"k1:{b64(KEY1)[:-1]}*", "key 'k1' is not valid base64url", id="alphabet"),
        pytest.param(
            "k1:" + base64.b64encode(_PLUS_SLASH).decode(),
            "key 'k1' is not valid base64url",
            id="standard-base64",
        ),
        pytest.param(f"k1:{b64(KEY1)[:-2]}", "key 'k1' is not valid base64url", id="truncated"),
        pytest.param(f"k1:{b64(KEY1[:16])}", "key 'k1' must be 32 bytes, got 16", id="aes-128"),
        pytest.param(f"k1:{b64(KEY1 + KEY2)}", "key 'k1' must be 32 bytes, got 64", id="too-long"),
        pytest.param(f"k1:{b64(KEY1)},k1:{b64(KEY2)}", "'k1' appears more than once", id="dup"),
    ],
)
def test_bad_configuration_names_the_setting_and_hides_the_keys(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        KeyRing.parse(value)
    assert caught.value.setting == "encryption_keys"
    assert message in str(caught.value)
    text = str(caught.value) + repr(caught.value)
    for key in (KEY1, KEY2, KEY1 + KEY2, KEY1[:16], _PLUS_SLASH):
        assert b64(key)[:20] not in text
        assert base64.b64encode(key).decode()[:20] not in text


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param([], "no key configured", id="none"),
        pytest.param([("k1", KEY1[:31])], "key 'k1' must be 32 bytes, got 31", id="short"),
        pytest.param([("k1", b64(KEY1))], "key 'k1' must be 32 bytes, got str", id="text"),
        pytest.param([("k1", KEY1), ("k1", KEY2)], "'k1' appears more than once", id="dup"),
        pytest.param([("k1", KEY1), ("", KEY2)], "entry 2: a key id is", id="empty-id"),
    ],
)
def test_the_constructor_checks_pairs_like_the_setting(
    keys: list[tuple[str, bytes]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        KeyRing(keys)
    assert caught.value.setting == "encryption_keys"


def test_generated_keys_are_fresh_and_parse() -> None:
    first, second = generate_key(), generate_key()
    assert first != second
    ring = KeyRing.parse(f"{first},{second}")
    assert ring.active_key_id == first.partition(":")[0]
    assert ring.active_key_id.startswith("k")
    key = first.partition(":")[2]
    assert "=" not in key
    assert len(base64.urlsafe_b64decode(key + "=")) == 32


def test_generated_keys_take_an_operator_id_and_check_it() -> None:
    assert generate_key("prod-2025").startswith("prod-2025:")
    with pytest.raises(ConfigError) as caught:
        generate_key("no spaces")
    assert caught.value.setting == "encryption_keys"
