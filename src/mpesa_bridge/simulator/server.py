"""`Simulator`: the gateway, its HTTP app and the callback sender, started and stopped together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

import httpx
from starlette.applications import Starlette

from .app import build_app
from .c2b import C2BDesk
from .callbacks import CallbackSender
from .config import SimulatorConfig
from .gateway import DarajaGateway
from .initiator import InitiatorGateway, ResultDelivery, stk_receipt_lookup
from .inspection import Inspection, RequestTally
from .results import ResultAttempt, ResultSender
from .state import PushRecord


class Simulator:
    """An offline Daraja: OAuth, STK Push and STK Query, Dynamic QR, the initiator APIs (B2C,
    Transaction Status, Account Balance, Reversal), the asynchronous STK callbacks and Results.

    Mount `simulator.app` in another ASGI app (or call it through `httpx.ASGITransport`) and run
    the callback sender with `async with simulator:` or `start()` / `aclose()`. Pushes accepted
    before `start()` start the sender on demand; `aclose()` cancels pending callbacks.

    `http` is the client that POSTs callbacks and Results; by default the simulator owns one.
    """

    def __init__(self, config: SimulatorConfig | None = None, *, http: httpx.AsyncClient | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._gateway = DarajaGateway(self.config, on_accept=self._on_accept)
        self._sender = CallbackSender(self.config, self._gateway.pushes, http)
        self._results = ResultSender(self.config, http)
        self._initiator = InitiatorGateway(
            self.config, on_result=self._on_result, stk_receipt=stk_receipt_lookup(self._gateway.pushes)
        )
        self._inspection = Inspection(RequestTally(), self.results, self.balances)
        self._app = build_app(self._gateway, initiator=self._initiator, inspection=self._inspection)

    @property
    def app(self) -> Starlette:
        """The ASGI app with Daraja's routes (no lifespan: the host app runs `start()`/`aclose()`)."""
        return self._app

    async def start(self) -> None:
        self._sender.start()

    async def aclose(self) -> None:
        await self._sender.aclose()
        await self._gateway.c2b.aclose()
        await self._results.aclose()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - tests call drain(seconds)
        """Wait until every scheduled callback and Result has been sent (or skipped); TimeoutError after `timeout`."""
        async with asyncio.timeout(timeout):
            await self._sender.drain(timeout)
            await self._results.drain(timeout)

    def push(self, checkout_request_id: str) -> PushRecord:
        """The push with this CheckoutRequestID; KeyError if the simulator never issued it."""
        record = self._gateway.pushes.get(checkout_request_id)
        if record is None:
            raise KeyError(checkout_request_id)
        return record

    def pushes(self) -> list[PushRecord]:
        """Every accepted push, oldest first."""
        return list(self._gateway.pushes)

    @property
    def c2b(self) -> C2BDesk:
        """C2B registrations and customer payments (`c2b.py`), for tests and demos."""
        return self._gateway.c2b

    def _on_accept(self, record: PushRecord) -> None:
        self._sender.schedule(record)

    # Initiator APIs -----------------------------------------------------------------------------

    @property
    def certificate_pem(self) -> bytes:
        """The certificate whose key opens every SecurityCredential (also `GET /simulator-certificate.pem`)."""
        return self._initiator.key.certificate_pem

    def balance(self, shortcode: str) -> int:
        """An organisation's Utility Account balance in whole shillings; KeyError for an unknown one."""
        return self._initiator.ledger.balances[shortcode]

    def balances(self) -> dict[str, int]:
        """Every organisation's Utility Account balance in whole shillings, by short code."""
        return dict(self._initiator.ledger.balances)

    def results(self) -> list[ResultAttempt]:
        """Every Result POST made so far (to ResultURL or QueueTimeOutURL), oldest first."""
        return list(self._results.attempts)

    def received(self) -> dict[str, int]:
        """How many requests reached each Daraja API (`inspection.APIS`), refused ones included."""
        return self._inspection.received.snapshot()

    def _on_result(self, delivery: ResultDelivery) -> None:
        self._results.schedule(delivery)


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    """A standalone simulator app whose lifespan runs the callback sender (`app.state.simulator`)."""
    simulator = Simulator(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with simulator:
            yield

    app = build_app(
        simulator._gateway, lifespan=lifespan, initiator=simulator._initiator, inspection=simulator._inspection
    )
    app.state.simulator = simulator
    return app


async def serve(host: str, port: int, config: SimulatorConfig | None = None) -> None:
    """Run a standalone simulator with uvicorn until cancelled."""
    import uvicorn  # only the standalone server needs it

    server = uvicorn.Server(uvicorn.Config(create_app(config), host=host, port=port, log_level="info"))
    await server.serve()
