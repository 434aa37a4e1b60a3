"""Password strength and hashing (argon2id).

Strength follows NIST SP 800-63B rather than composition rules: at least 10 characters, at most
256, not one of the commonly used passwords, not the email or its name part, and not one
character repeated. Hashing is argon2id with argon2-cffi's defaults (RFC 9106's second
recommended profile); a hash made with weaker parameters is replaced at the next sign-in.
"""

from __future__ import annotations

import argon2

from mpesa_bridge.core.errors import InvalidRequest

MIN_LENGTH = 10
MAX_LENGTH = 256
# The most used passwords that are 10 characters or longer (public breach lists); a longer list
# would be a file; these are the ones people actually type into a payments dashboard.
COMMON = frozenset(
    {
        "1234567890",
        "0123456789",
        "12345678910",
        "123456789012",
        "qwertyuiop",
        "1q2w3e4r5t",
        "password123",
        "password1234",
        "passw0rd123",
        "iloveyou123",
        "qwerty12345",
        "qwerty123456",
        "abcdefghij",
        "abc1234567",
        "administrator",
        "admin12345",
        "mpesa12345",
        "mpesapassword",
        "safaricom123",
        "kenya12345",
        "nairobi123",
        "welcome123",
        "letmein123",
    }
)


def check_strength(password: str, email: str = "") -> None:
    """Raise InvalidRequest(param="password") saying what is wrong with `password`."""
    if len(password) < MIN_LENGTH:
        raise InvalidRequest(f"Use at least {MIN_LENGTH} characters.", code="weak_password", param="password")
    if len(password) > MAX_LENGTH:
        raise InvalidRequest(f"Use at most {MAX_LENGTH} characters.", code="weak_password", param="password")
    lowered = password.lower()
    local = email.lower().split("@", 1)[0]
    if lowered in COMMON or len(set(lowered)) < 4:
        raise InvalidRequest("This password is too easy to guess.", code="weak_password", param="password")
    if email and (lowered == email.lower() or (len(local) >= 4 and local in lowered)):
        raise InvalidRequest("Do not use your email in your password.", code="weak_password", param="password")


class PasswordHasher:
    """argon2id. Tests pass small costs (`time_cost=1, memory_cost=1024`) to stay fast."""

    def __init__(self, *, time_cost: int | None = None, memory_cost: int | None = None) -> None:
        self._argon = argon2.PasswordHasher(
            time_cost=time_cost or argon2.DEFAULT_TIME_COST,
            memory_cost=memory_cost or argon2.DEFAULT_MEMORY_COST,
        )
        self._decoy: str | None = None  # verified against when the email is unknown: answering takes as long

    def hash(self, password: str) -> str:
        return self._argon.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        if stored is None and self._decoy is None:
            self._decoy = self._argon.hash("decoy password, never anyone's")
        try:
            return self._argon.verify(stored or self._decoy or "", password) and stored is not None
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._argon.check_needs_rehash(stored)
