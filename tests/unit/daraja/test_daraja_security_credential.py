"""SecurityCredential (daraja.md §15): RSA PKCS#1 v1.5 with a certificate's key, base64; decrypted
with the matching private key. The key pair is made here: Safaricom's certificates are not in the repo."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from mpesa_bridge.daraja import DarajaValidationError, load_certificate_key, security_credential

PASSWORD = "Safaricom999!*!"


def certificate_for(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test initiator certificate")])
    # Long expired on purpose: Safaricom's certificates are too, and the client must not care.
    start = datetime(2014, 11, 12, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=730))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pem(key: rsa.RSAPrivateKey) -> bytes:
    return certificate_for(key).public_bytes(serialization.Encoding.PEM)


def decrypt(key: rsa.RSAPrivateKey, credential: str) -> str:
    return key.decrypt(base64.b64decode(credential, validate=True), padding.PKCS1v15()).decode()


def test_the_password_itself_is_encrypted_with_pkcs1_v15_and_base64(key: rsa.RSAPrivateKey, pem: bytes) -> None:
    credential = security_credential(PASSWORD, pem)

    assert len(credential) == 344  # a 2048-bit ciphertext, base64 with padding
    assert decrypt(key, credential) == PASSWORD  # raw UTF-8: not base64'd first, nothing appended


def test_oaep_cannot_open_it(key: rsa.RSAPrivateKey, pem: bytes) -> None:
    ciphertext = base64.b64decode(security_credential(PASSWORD, pem))
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    with pytest.raises(ValueError):
        key.decrypt(ciphertext, oaep)


def test_every_call_gives_another_valid_credential(key: rsa.RSAPrivateKey, pem: bytes) -> None:
    first, second = security_credential(PASSWORD, pem), security_credential(PASSWORD, pem)

    assert first != second
    assert decrypt(key, first) == decrypt(key, second) == PASSWORD


def test_certificate_as_der_bytes_pem_text_or_a_file(key: rsa.RSAPrivateKey, pem: bytes, tmp_path: Path) -> None:
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    pem_file, der_file = tmp_path / "sandbox.cer", tmp_path / "sandbox.der"
    pem_file.write_bytes(pem)
    der_file.write_bytes(der)

    for certificate in (der, pem.decode(), pem_file, str(pem_file), der_file):
        assert decrypt(key, security_credential(PASSWORD, certificate)) == PASSWORD


def test_non_ascii_password_is_utf8(key: rsa.RSAPrivateKey, pem: bytes) -> None:
    assert decrypt(key, security_credential("Pässwörd#1", pem)) == "Pässwörd#1"


def test_a_missing_file_or_garbage_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(DarajaValidationError) as missing:
        security_credential(PASSWORD, tmp_path / "nope.cer")
    assert missing.value.field == "certificate"
    with pytest.raises(DarajaValidationError, match="not a PEM or DER"):
        security_credential(PASSWORD, b"not a certificate")
    with pytest.raises(DarajaValidationError, match="not a PEM or DER"):
        security_credential(PASSWORD, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_a_certificate_without_an_rsa_key_is_refused() -> None:
    ec_pem = certificate_for(ec.generate_private_key(ec.SECP256R1())).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(DarajaValidationError, match="RSA"):
        load_certificate_key(ec_pem)


def test_an_empty_password_is_refused(pem: bytes) -> None:
    with pytest.raises(DarajaValidationError) as error:
        security_credential("", pem)
    assert error.value.field == "password"
