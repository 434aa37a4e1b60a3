"""The standalone simulator (`create_app`) served by uvicorn over real sockets, end to end."""

from __future__ import annotations

import asyncio

import httpx
import uvicorn

from mpesa_bridge.simulator import (
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
    CallbackReceiver,
    Simulator,
    SimulatorConfig,
    create_app,
    stk_password,
)


async def test_standalone_server_pushes_and_calls_back() -> None:
    app = create_app(SimulatorConfig(callback_delay=0.01))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(5):
            while not server.started:
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with CallbackReceiver() as receiver, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            token = await client.get(
                "/oauth/v1/generate",
                params={"grant_type": "client_credentials"},
                auth=("sim_consumer_key", "sim_consumer_secret"),
            )
            timestamp = "20241121131530"
            response = await client.post(
                "/mpesa/stkpush/v1/processrequest",
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                json={
                    "BusinessShortCode": 174379,
                    "Password": stk_password(SANDBOX_SHORTCODE, SANDBOX_PASSKEY, timestamp),
                    "Timestamp": timestamp,
                    "TransactionType": "CustomerPayBillOnline",
                    "Amount": 1,
                    "PartyA": 254708374149,
                    "PartyB": 174379,
                    "PhoneNumber": 254708374149,
                    "CallBackURL": receiver.url("/hooks/stk"),
                    "AccountReference": "INV00042",
                    "TransactionDesc": "Order 42",
                },
            )
            [callback] = await receiver.wait_for(1)
            await app.state.simulator.drain(timeout=5)
    finally:
        server.should_exit = True
        await serving

    assert response.status_code == 200
    assert callback.json()["Body"]["stkCallback"]["CheckoutRequestID"] == response.json()["CheckoutRequestID"]
    simulator = app.state.simulator
    assert isinstance(simulator, Simulator)
    assert simulator.push(response.json()["CheckoutRequestID"]).callbacks_sent == 1
