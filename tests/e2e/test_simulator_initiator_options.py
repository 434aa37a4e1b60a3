"""`mpesa-bridge simulator --initiator-key … --result-delay …` as its own process: it publishes the
given key's certificate, opens a SecurityCredential made with it, and posts a payout's Result after
the configured delay to a loopback receiver (the bridge's e2e tests need both to be settable)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mpesa_bridge.daraja import B2cPaymentRequest, DarajaClient, DarajaCredentials, TokenCache, security_credential
from tests.fixtures.receiver import Receiver
from tests.fixtures.servers import ServerProcess, simulator_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory, key: rsa.RSAPrivateKey) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("initiator")
    key_file: Path = folder / "initiator-key.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    process = simulator_process(folder)
    process.args += ["--initiator-key", str(key_file), "--result-delay", "0.3"]
    process.start(health_path="/oauth/v1/generate")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as receiver:
        yield receiver


async def test_the_given_key_is_published_and_results_come_after_the_given_delay(
    simulator: ServerProcess, receiver: Receiver, key: rsa.RSAPrivateKey
) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        pem = (await http.get(simulator.url + "/simulator-certificate.pem")).content
        published = x509.load_pem_x509_certificate(pem).public_key()
        assert isinstance(published, rsa.RSAPublicKey)
        assert published.public_numbers() == key.public_key().public_numbers()

        client = DarajaClient(
            simulator.url,
            DarajaCredentials("sim_consumer_key", "sim_consumer_secret"),
            http=http,
            token_cache=TokenCache(),
        )
        request = B2cPaymentRequest(
            originator_conversation_id="e2e-initiator-options-1",
            initiator_name="testapi",
            security_credential=security_credential("Safaricom999!*!", pem),
            command_id="BusinessPayment",
            amount=10,
            party_a="600000",
            party_b="254708374149",
            remarks="options test",
            queue_timeout_url=receiver.url + "/timeout",
            result_url=receiver.url + "/result",
        )
        sent = time.monotonic()
        await client.b2c_payment(request)
    [result] = await receiver.wait_for(1, timeout=10.0)
    assert time.monotonic() - sent >= 0.3  # not before the configured delay
    assert result.path == "/result"
    assert result.json["Result"]["ResultCode"] == 0  # the credential opened: testapi's password
