"""The simulator's initiator key pair: it publishes the certificate and decrypts every
SecurityCredential with the private key (daraja.md §15).

Safaricom encrypts nothing for us: a client encrypts the initiator password with the environment's
certificate, and M-Pesa decrypts it. The simulator plays M-Pesa with a key of its own, made on
first use (2048-bit RSA, a self-signed certificate valid for ten years), or loaded from
`SimulatorConfig.initiator_key_pem`. Clients fetch the certificate from
`GET /simulator-certificate.pem` (or `Simulator.certificate_pem`).
"""

from __future__ import annotations

import base64
import binascii
import threading
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CERTIFICATE_NAME = "mpesa-bridge Daraja simulator initiator certificate"


class InitiatorKey:
    """An RSA key pair and its certificate, made (or loaded) once, on first use."""

    def __init__(self, private_key_pem: bytes | None, now: datetime) -> None:
        self._pem = private_key_pem
        self._now = now
        self._lock = threading.Lock()
        self._key: rsa.RSAPrivateKey | None = None
        self._certificate_pem: bytes | None = None

    @property
    def ready(self) -> bool:
        """True once the key is made or loaded (then nothing here is slow)."""
        return self._key is not None

    def load(self) -> None:
        """Make or load the key now (a 2048-bit key takes a moment: call it off the event loop)."""
        self._load()

    @property
    def certificate_pem(self) -> bytes:
        self._load()
        assert self._certificate_pem is not None
        return self._certificate_pem

    def decrypt(self, credential: str) -> str | None:
        """The password inside a SecurityCredential, or None if it is not one made with our certificate."""
        key = self._load()
        try:
            ciphertext = base64.b64decode(credential, validate=True)
            plaintext = key.decrypt(ciphertext, padding.PKCS1v15())
            return plaintext.decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            # OpenSSL may also answer a wrong ciphertext with random bytes (implicit rejection):
            # they then simply do not match the password.
            return None

    def _load(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._key is None:
                self._key = self._private_key()
                self._certificate_pem = _self_signed(self._key, self._now).public_bytes(serialization.Encoding.PEM)
            return self._key

    def _private_key(self) -> rsa.RSAPrivateKey:
        if self._pem is None:
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key = serialization.load_pem_private_key(self._pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("initiator_key_pem must be an RSA private key")
        return key


def _self_signed(key: rsa.RSAPrivateKey, now: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CERTIFICATE_NAME)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
