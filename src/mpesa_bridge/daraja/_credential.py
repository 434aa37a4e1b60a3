"""The SecurityCredential of the initiator APIs (daraja.md §15).

The initiator's password, as UTF-8 bytes (not base64'd first, nothing appended), encrypted with the
RSA public key of the environment's X.509 certificate under PKCS#1 v1.5 padding, then base64. The
bridge never fetches a certificate: the caller passes it (PEM or DER bytes, PEM text, or a file
path). Its expiry is not checked — Safaricom's certificates expired long ago and are still the keys.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ._exceptions import DarajaValidationError

__all__ = ["Certificate", "load_certificate_key", "security_credential"]

Certificate = bytes | str | os.PathLike[str]
"""PEM or DER bytes, PEM text, or the path of a PEM or DER file."""

_PEM_MARK = b"-----BEGIN"


def load_certificate_key(certificate: Certificate) -> rsa.RSAPublicKey:
    """The RSA public key of `certificate`; `DarajaValidationError` ("certificate") if it is none."""
    data = _certificate_bytes(certificate)
    try:
        cert = x509.load_pem_x509_certificate(data) if _PEM_MARK in data else x509.load_der_x509_certificate(data)
        key = cert.public_key()
    except ValueError:
        raise DarajaValidationError("certificate", "is not a PEM or DER X.509 certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise DarajaValidationError("certificate", "does not hold an RSA public key")
    return key


def security_credential(password: str, certificate: Certificate) -> str:
    """The `SecurityCredential` for `password`: base64(RSA-PKCS#1-v1.5(certificate key, password)).

    Randomised: every call gives another string, all valid. Make it once per password and reuse it.
    """
    if not isinstance(password, str) or not password:
        raise DarajaValidationError("password", "must not be empty")
    key = load_certificate_key(certificate)
    ciphertext = key.encrypt(password.encode("utf-8"), padding.PKCS1v15())
    return base64.b64encode(ciphertext).decode("ascii")


def _certificate_bytes(certificate: Certificate) -> bytes:
    if isinstance(certificate, bytes):
        return certificate
    if isinstance(certificate, str) and _PEM_MARK.decode() in certificate:
        return certificate.encode("ascii", errors="replace")
    try:
        return Path(certificate).read_bytes()
    except OSError as exc:
        # The path is configuration, not a secret; the OS message says what went wrong.
        raise DarajaValidationError("certificate", f"cannot be read: {exc.strerror or type(exc).__name__}") from None
