"""Secrets at rest: AES-256-GCM under a master key, with the key's id stored beside each value.

A sealed value reads `v1.<key id>.<base64url(nonce || ciphertext+tag)>`. The key id (eight hex
characters of the key's SHA-256) lets several master keys coexist while values are re-encrypted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mpesa_bridge.core.errors import BridgeError

_VERSION = "v1"


class MasterKeyError(BridgeError):
    code = "master_key_invalid"


def parse_master_key(text: str) -> bytes:
    """A master key is 32 random bytes written as base64 (url-safe or standard)."""
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MasterKeyError("the master key is not base64") from exc
    if len(raw) != 32:
        raise MasterKeyError("the master key must be 32 bytes (generate one with `mpesa-bridge keygen`)")
    return raw


def generate_master_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class SecretBox:
    """Seals and opens secrets. The first key seals; every key opens what it sealed."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise MasterKeyError("no master key configured")
        self._current = keys[0]
        self._by_id = {key_id(k): AESGCM(k) for k in keys}

    @property
    def current_key_id(self) -> str:
        return key_id(self._current)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The id of every configured key, the current (sealing) one first."""
        return tuple(self._by_id)

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._by_id[self.current_key_id].encrypt(nonce, plaintext.encode(), context.encode())
        blob = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_VERSION}.{self.current_key_id}.{blob}"

    def open(self, sealed: str, *, context: str) -> str:
        try:
            version, kid, blob = sealed.split(".", 2)
        except ValueError as exc:
            raise MasterKeyError("a stored secret is malformed") from exc
        aead = self._by_id.get(kid)
        if version != _VERSION or aead is None:
            raise MasterKeyError(f"a stored secret was sealed under master key {kid}, which is not configured")
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
            return aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise MasterKeyError("a stored secret does not open with the configured master key") from exc

    def sealed_with(self, sealed: str) -> str:
        return sealed.split(".", 2)[1]
