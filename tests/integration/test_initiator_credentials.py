"""Initiator credentials per project mode (issue 14, part 1), on SQLite and PostgreSQL.

Stored sealed through the admin API, kept or removed as documented, never shown back; turned into a
SecurityCredential by the gateway with the environment's certificate: the simulator's own (fetched
from it over HTTP, once) or one given by a setting. The simulator's key opens what the bridge made.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from mpesa_bridge.config import ConfigError
from mpesa_bridge.core.ports import InitiatorUnavailable
from mpesa_bridge.core.projects import DarajaAccount, DarajaEnvironment, Mode
from mpesa_bridge.core.projects import Tenant as Scope
from mpesa_bridge.runtime import build_runtime
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import ADMIN_TOKEN, InProcessBridge, make_settings

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SANDBOX = {
    "environment": "sandbox",
    "consumer_key": "ck-sandbox",
    "consumer_secret": "cs-sandbox",
    "short_code": "600000",
    "passkey": "pk-sandbox",
}


def _key_and_certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test sandbox certificate")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


def _decrypt(key: rsa.RSAPrivateKey, credential: str) -> str:
    return key.decrypt(base64.b64decode(credential), padding.PKCS1v15()).decode()


async def test_the_initiator_is_stored_sealed_kept_and_removed(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project("Duka")
    path = f"/v1/admin/projects/{shop.project_id}/daraja/test"
    body = {**SANDBOX, "initiator_name": "duka_ops", "initiator_password": "first-Pass-1"}
    answer = await bridge.client.put(path, json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert answer.json()["initiator_name"] == "duka_ops"
    assert "first-Pass-1" not in answer.text
    scope = Scope(shop.project_id, Mode.TEST)
    account = await bridge.runtime.projects.account(scope)
    assert (account.initiator_name, account.initiator_password) == ("duka_ops", "first-Pass-1")

    # Settings saved without an initiator keep it; an empty name removes it.
    assert (await bridge.client.put(path, json={**SANDBOX, "short_code": "600001"}, headers=ADMIN)).status_code == 200
    assert (await bridge.runtime.projects.account(scope)).initiator_password == "first-Pass-1"
    half = await bridge.client.put(path, json={**SANDBOX, "initiator_name": "duka_ops"}, headers=ADMIN)
    assert half.status_code == 400 and half.json()["error"]["param"] == "initiator_password"
    removed = await bridge.client.put(path, json={**SANDBOX, "initiator_name": ""}, headers=ADMIN)
    assert removed.status_code == 200 and removed.json()["initiator_name"] is None
    assert not (await bridge.runtime.projects.account(scope)).has_initiator


async def test_the_simulator_opens_the_credential_the_gateway_makes(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project("Duka")  # test mode on the simulator: the sandbox initiator
    account = await bridge.runtime.projects.account(Scope(shop.project_id, Mode.TEST))
    assert account.initiator_name == "testapi"
    credential = await bridge.runtime.gateway.security_credential(account)
    assert bridge.simulator._initiator.key.decrypt(credential) == "Safaricom999!*!"
    # Made once per password: the same string serves every request (the certificate fetched once).
    assert await bridge.runtime.gateway.security_credential(account) == credential
    other = DarajaAccount(
        DarajaEnvironment.SIMULATOR, "ck", "cs", initiator_name="testapi", initiator_password="wrong-password"
    )
    wrong = await bridge.runtime.gateway.security_credential(other)
    assert wrong != credential and bridge.simulator._initiator.key.decrypt(wrong) == "wrong-password"


async def test_no_initiator_or_no_certificate_is_refused_before_anything_is_sent(bridge: InProcessBridge) -> None:
    gateway = bridge.runtime.gateway
    with pytest.raises(InitiatorUnavailable) as missing:
        await gateway.security_credential(DarajaAccount(DarajaEnvironment.SIMULATOR, "ck", "cs"))
    assert missing.value.code == "initiator_not_configured"
    sandbox = DarajaAccount(DarajaEnvironment.SANDBOX, "ck", "cs", initiator_name="ops", initiator_password="pw")
    with pytest.raises(InitiatorUnavailable) as no_certificate:
        await gateway.security_credential(sandbox)
    assert no_certificate.value.code == "certificate_unavailable"
    assert "MPESA_BRIDGE_DARAJA_CERTIFICATE_SANDBOX" in no_certificate.value.message


async def test_a_certificate_setting_is_used_for_its_environment(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    key, pem = _key_and_certificate()
    path = tmp_path / "sandbox.cer"
    path.write_bytes(pem)
    for given in (str(path), pem.decode()):  # a file's path, or the PEM itself
        runtime = await build_runtime(make_settings(db_url, tmp_path, daraja_certificate_sandbox=given))
        try:
            account = DarajaAccount(
                DarajaEnvironment.SANDBOX, "ck", "cs", initiator_name="ops", initiator_password="Sandbox#Pass"
            )
            assert _decrypt(key, await runtime.gateway.security_credential(account)) == "Sandbox#Pass"
        finally:
            await runtime.aclose()


@pytest.mark.parametrize(
    ("given", "says"),
    [("/nonexistent/production.cer", "cannot read"), ("-----BEGIN CERTIFICATE-----\nnot base64\n", "certificate")],
)
async def test_an_unusable_certificate_is_a_start_up_error(
    database: Database, db_url: str, tmp_path: Path, given: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        await build_runtime(make_settings(db_url, tmp_path, daraja_certificate_production=given))
    assert "MPESA_BRIDGE_DARAJA_CERTIFICATE_PRODUCTION" in str(caught.value) and says in str(caught.value)
