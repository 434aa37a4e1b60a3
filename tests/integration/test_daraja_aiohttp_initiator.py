"""The initiator APIs over aiohttp (the bridge's transport) against a standalone simulator on a real
loopback port: a payout whose answer is lost is `unknown`, reached the simulator exactly once, is
refused as a duplicate when sent again under its id, and is found paid by Transaction Status."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import uvicorn

from mpesa_bridge.daraja import (
    B2cPaymentRequest,
    DarajaClient,
    DarajaCredentials,
    DarajaDuplicateRequest,
    DarajaReadTimeout,
    TokenCache,
    TransactionStatusRequest,
    b2c_details,
    parse_result,
    security_credential,
    transaction_status_details,
)
from mpesa_bridge.daraja.pool import close_http, open_daraja_http
from mpesa_bridge.simulator import CallbackReceiver, Simulator, SimulatorConfig, create_app
from mpesa_bridge.tls import client_ssl_context
from tests.fixtures.bridge import wait_until
from tests.fixtures.servers import free_port

B2C = "/mpesa/b2c/v3/paymentrequest"
CREDENTIALS = DarajaCredentials("sim_consumer_key", "sim_consumer_secret")
TIMEOUT = httpx.Timeout(5.0, connect=2.0)

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class HoldAnswers:
    """In front of the simulator: counts requests by path; holds back the answers of `held` paths
    (the request is handled at once, only the answer waits), as a cut connection loses it."""

    def __init__(self, app: Asgi) -> None:
        self.app = app
        self.seen: dict[str, int] = {}
        self.held: set[str] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        self.seen[path] = self.seen.get(path, 0) + 1
        if path not in self.held:
            await self.app(scope, receive, send)
            return

        async def late_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(30)
            await send(message)

        await self.app(scope, receive, late_send)


@contextlib.asynccontextmanager
async def served() -> AsyncIterator[tuple[str, HoldAnswers, Simulator]]:
    app = create_app(SimulatorConfig(result_delay=0.01, callback_timeout=2.0))
    front = HoldAnswers(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(front, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))  # type: ignore[arg-type]
    serving = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started or serving.done(), timeout=10)
        assert not serving.done(), "the simulator did not start"
        yield f"http://127.0.0.1:{port}", front, app.state.simulator
    finally:
        server.should_exit = True
        server.force_exit = True  # a held answer is not waited for
        await serving


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    async with CallbackReceiver() as receiver:
        yield receiver


async def test_a_lost_payout_answer_is_unknown_and_never_paid_twice(receiver: CallbackReceiver) -> None:
    async with served() as (url, front, simulator):
        session, cache = open_daraja_http(TIMEOUT, client_ssl_context()), TokenCache()
        try:
            client = DarajaClient(url, CREDENTIALS, http=session, token_cache=cache, timeout=TIMEOUT)
            pem = simulator.certificate_pem
            credential = security_credential("Safaricom999!*!", pem)
            request = B2cPaymentRequest(
                originator_conversation_id=f"payout-{uuid.uuid4()}",
                initiator_name="testapi",
                security_credential=credential,
                command_id="BusinessPayment",
                amount=500,
                party_a="600000",
                party_b="254708374149",
                remarks="Payout 7",
                queue_timeout_url=receiver.url("/timeout"),
                result_url=receiver.url("/result"),
            )

            front.held.add(B2C)
            short = httpx.Timeout(5.0, connect=2.0, read=0.3)
            hasty = DarajaClient(url, CREDENTIALS, http=session, token_cache=cache, timeout=short)
            with pytest.raises(DarajaReadTimeout) as lost:
                await hasty.b2c_payment(request)
            assert lost.value.outcome_unknown is True
            assert front.seen[B2C] == 1  # sent once, not retried

            # The Result still arrives: the payout was made.
            [result] = await receiver.wait_for(1, path="/result")
            paid = b2c_details(parse_result(result.body))
            assert paid.amount == 500

            # Sending it again under the same id cannot pay twice.
            front.held.clear()
            with pytest.raises(DarajaDuplicateRequest):
                await client.b2c_payment(request)
            assert simulator.balance("600000") == 1_000_000 - 500

            # And Transaction Status by our id settles it.
            await client.transaction_status(
                TransactionStatusRequest(
                    initiator="testapi",
                    security_credential=credential,
                    party_a="600000",
                    result_url=receiver.url("/status"),
                    queue_timeout_url=receiver.url("/timeout"),
                    remarks="settle",
                    original_conversation_id=request.originator_conversation_id,
                )
            )
            [status] = await receiver.wait_for(1, path="/status")
            details = transaction_status_details(parse_result(status.body))
            assert details.completed
            assert details.receipt == paid.receipt
        finally:
            await close_http(session)
