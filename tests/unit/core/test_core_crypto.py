"""Secrets at rest (`core.crypto`): AES-256-GCM under master keys identified by key id."""

from __future__ import annotations

import base64
import hashlib
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpesa_bridge.core.crypto import MasterKeyError, SecretBox, generate_master_key, key_id, parse_master_key
from mpesa_bridge.core.errors import BridgeError

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
SEALED_SHAPE = re.compile(r"v1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+")


def _raw(sealed: str) -> bytes:
    blob = sealed.split(".", 2)[2]
    return base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))


# ---------------------------------------------------------------------------------------------
# seal / open
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext", ["", "x", "consumer-secret-123", "bfb279f9aa9bdbcf158e97dd71a467cd2e0c8930", "ñ☕ 𝄞"]
)
def test_seal_then_open_round_trips(plaintext: str) -> None:
    box = SecretBox([KEY_A])
    sealed = box.seal(plaintext, context="daraja:prj_1:test")
    assert box.open(sealed, context="daraja:prj_1:test") == plaintext


def test_sealed_value_shape_and_key_id() -> None:
    box = SecretBox([KEY_A])
    sealed = box.seal("secret", context="ctx")
    assert SEALED_SHAPE.fullmatch(sealed)
    version, kid, _ = sealed.split(".", 2)
    assert version == "v1"
    assert kid == hashlib.sha256(KEY_A).hexdigest()[:8] == key_id(KEY_A) == box.current_key_id
    assert box.sealed_with(sealed) == kid
    # 12-byte nonce + ciphertext (same length as plaintext) + 16-byte tag
    assert len(_raw(sealed)) == 12 + len(b"secret") + 16


def test_sealing_twice_gives_different_texts() -> None:
    box = SecretBox([KEY_A])
    first, second = box.seal("same", context="ctx"), box.seal("same", context="ctx")
    assert first != second
    assert _raw(first)[:12] != _raw(second)[:12]
    assert box.open(first, context="ctx") == box.open(second, context="ctx") == "same"


@settings(max_examples=200)
@given(st.text(min_size=8, max_size=200), st.text(max_size=40))
def test_round_trip_and_the_sealed_text_never_contains_the_plaintext(plaintext: str, context: str) -> None:
    box = SecretBox([KEY_A])
    sealed = box.seal(plaintext, context=context)
    assert plaintext not in sealed
    assert plaintext.encode() not in _raw(sealed)
    assert box.open(sealed, context=context) == plaintext


# ---------------------------------------------------------------------------------------------
# context binding
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("other", ["daraja:prj_2:test", "daraja:prj_1:live", "", "daraja:prj_1:test "])
def test_opening_under_another_context_fails(other: str) -> None:
    box = SecretBox([KEY_A])
    sealed = box.seal("passkey", context="daraja:prj_1:test")
    with pytest.raises(MasterKeyError) as info:
        box.open(sealed, context=other)
    assert info.value.code == "master_key_invalid"


# ---------------------------------------------------------------------------------------------
# several keys: rotation
# ---------------------------------------------------------------------------------------------


def test_rotation_old_values_open_and_new_values_use_the_first_key() -> None:
    old_box = SecretBox([KEY_A])
    sealed_under_a = old_box.seal("old secret", context="ctx")

    rotated = SecretBox([KEY_B, KEY_A])
    assert rotated.current_key_id == key_id(KEY_B)
    assert rotated.open(sealed_under_a, context="ctx") == "old secret"
    assert rotated.sealed_with(sealed_under_a) == key_id(KEY_A)

    sealed_under_b = rotated.seal("new secret", context="ctx")
    assert rotated.sealed_with(sealed_under_b) == key_id(KEY_B)
    assert rotated.open(sealed_under_b, context="ctx") == "new secret"

    # the old deployment, which only knows A, cannot read what B sealed
    with pytest.raises(MasterKeyError):
        old_box.open(sealed_under_b, context="ctx")


def test_a_value_sealed_under_a_key_no_longer_configured_does_not_open() -> None:
    sealed = SecretBox([KEY_A]).seal("secret", context="ctx")
    with pytest.raises(MasterKeyError) as info:
        SecretBox([KEY_B]).open(sealed, context="ctx")
    assert key_id(KEY_A) in info.value.message


def test_wrong_key_under_the_same_key_id_fails_authentication() -> None:
    sealed = SecretBox([KEY_A]).seal("secret", context="ctx")
    forged = f"v1.{key_id(KEY_B)}.{sealed.split('.', 2)[2]}"
    with pytest.raises(MasterKeyError):
        SecretBox([KEY_B]).open(forged, context="ctx")


def test_tampered_ciphertext_fails_authentication() -> None:
    box = SecretBox([KEY_A])
    sealed = box.seal("secret value", context="ctx")
    raw = bytearray(_raw(sealed))
    raw[-1] ^= 1
    tampered = f"v1.{box.current_key_id}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"
    with pytest.raises(MasterKeyError):
        box.open(tampered, context="ctx")


@pytest.mark.parametrize("sealed", ["", "nonsense", "v1.only-two"])
def test_values_without_three_parts_are_malformed(sealed: str) -> None:
    with pytest.raises(MasterKeyError):
        SecretBox([KEY_A]).open(sealed, context="ctx")


def test_an_unknown_version_is_refused() -> None:
    box = SecretBox([KEY_A])
    sealed = box.seal("secret", context="ctx")
    with pytest.raises(MasterKeyError):
        box.open("v2." + sealed.split(".", 1)[1], context="ctx")


@pytest.mark.parametrize("blob", ["A", "AAAA", ""])
def test_a_garbled_blob_is_reported_as_master_key_error(blob: str) -> None:
    box = SecretBox([KEY_A])
    with pytest.raises(MasterKeyError):
        box.open(f"v1.{box.current_key_id}.{blob}", context="ctx")


def test_a_box_needs_a_key() -> None:
    with pytest.raises(MasterKeyError, match="no master key"):
        SecretBox([])


# ---------------------------------------------------------------------------------------------
# master keys as text
# ---------------------------------------------------------------------------------------------


def test_generated_keys_parse_to_32_bytes_and_differ() -> None:
    first, second = generate_master_key(), generate_master_key()
    assert first != second
    assert "=" not in first
    assert len(parse_master_key(first)) == 32
    assert parse_master_key(first) != parse_master_key(second)


@pytest.mark.parametrize(
    "encode",
    [
        lambda b: base64.urlsafe_b64encode(b).decode(),
        lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
        lambda b: base64.b64encode(b).decode(),
        lambda b: "  " + base64.b64encode(b).decode() + "\n",
    ],
    ids=["urlsafe", "urlsafe-unpadded", "standard", "whitespace"],
)
def test_parse_master_key_accepts_both_alphabets(encode: object) -> None:
    raw = bytes([0xFB, 0xFF, 0xFE] * 10 + [0x3E, 0x3F])  # bytes that need + / or - _
    assert len(raw) == 32
    assert parse_master_key(encode(raw)) == raw  # type: ignore[operator]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "é" * 44,
        "not base64 at all!",
        base64.b64encode(os.urandom(16)).decode(),
        base64.b64encode(os.urandom(31)).decode(),
        base64.b64encode(os.urandom(33)).decode(),
        base64.b64encode(os.urandom(64)).decode(),
        "A",
    ],
    ids=["empty", "blank", "non-ascii", "junk", "16-bytes", "31-bytes", "33-bytes", "64-bytes", "one-char"],
)
def test_parse_master_key_refuses(text: str) -> None:
    with pytest.raises(MasterKeyError) as info:
        parse_master_key(text)
    assert isinstance(info.value, BridgeError)
    assert info.value.code == "master_key_invalid"
