"""What applies a stored callback: one handler per callback kind, looked up in a registry.

Every callback Daraja sends reaches `/v1/callbacks/daraja/{kind}/{token}`, is stored raw with its
kind, and is then applied by the handler registered for that kind — the inbox (`workers.inbox`)
neither knows nor cares which kinds exist. A new kind plugs in by registering a handler; the route,
the group commit, the sweep and the bounded retries of `core.callbacks.retry` serve it unchanged.
A kind nobody registered is refused at the edge (404) before anything is stored, so nobody can fill
the inbox with rows no handler would ever process.

The kinds, one per URL Daraja is given (names ≤ 16 characters: the `kind` column; free of the
words Daraja refuses in C2B URLs — "mpesa", "query", "exec", "sql", …):

    stk               STK Push CallBackURL                        handled (`core.callbacks.stk`)
    b2c_result        B2C ResultURL                               handled (`core.payouts.callbacks`)
    b2c_timeout       B2C QueueTimeOutURL                         handled (`core.payouts.callbacks`)
    reversal_result   Reversal ResultURL                          handled (`core.reversals.results`)
    reversal_timeout  Reversal QueueTimeOutURL                    handled (`core.reversals.results`)
    status_result     Transaction Status ResultURL                handled (`core.status_queries.callbacks`)
    status_timeout    Transaction Status QueueTimeOutURL          handled (`core.status_queries.callbacks`)
    balance_result    Account Balance ResultURL                   handled (`core.balances.results`)
    balance_timeout   Account Balance QueueTimeOutURL             handled (`core.balances.results`)
    c2b_validation    C2B ValidationURL                           handled (`core.c2b.validation`, via runtime)
    c2b_confirmation  C2B ConfirmationURL                         handled (`core.c2b.confirmation`, via runtime)

A reserved kind is a name, not a route: until its handler is registered it is refused like any
unknown kind. C2B validation is more than a handler: Daraja waits (~8 s) for an accept or reject
answer, which an inbox applying later cannot give, so the route stores it settled and answers through
`core.c2b.validation`; its handler only closes a row a crash left `received`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from mpesa_bridge.core.callbacks.stk import StkHandler
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.payments.policy import ReconcilePolicy
from mpesa_bridge.core.payouts.callbacks import B2cResultHandler, B2cTimeoutHandler
from mpesa_bridge.core.payouts.policy import PayoutPolicy
from mpesa_bridge.core.payouts.ports import InitiatorResultReader
from mpesa_bridge.core.ports import UnitOfWork
from mpesa_bridge.core.status_queries.callbacks import StatusResultHandler

STK = "stk"
B2C_RESULT = "b2c_result"
B2C_TIMEOUT = "b2c_timeout"
REVERSAL_RESULT = "reversal_result"
REVERSAL_TIMEOUT = "reversal_timeout"
STATUS_RESULT = "status_result"
STATUS_TIMEOUT = "status_timeout"
BALANCE_RESULT = "balance_result"
BALANCE_TIMEOUT = "balance_timeout"
C2B_VALIDATION = "c2b_validation"
C2B_CONFIRMATION = "c2b_confirmation"
KNOWN_KINDS = (
    STK,
    B2C_RESULT,
    B2C_TIMEOUT,
    REVERSAL_RESULT,
    REVERSAL_TIMEOUT,
    STATUS_RESULT,
    STATUS_TIMEOUT,
    BALANCE_RESULT,
    BALANCE_TIMEOUT,
    C2B_VALIDATION,
    C2B_CONFIRMATION,
)

_KIND = re.compile(r"[a-z][a-z0-9_]{0,15}")


class CallbackHandler(Protocol):
    """Applies stored callbacks of one kind inside the caller's transaction, the rows locked.

    It sets each callback's outcome (`state`, `flag_reason`, …) and writes whatever the callback
    changes through `uow`. It judges what Daraja sent without raising (a body it cannot read is
    `flagged`/`malformed`); an exception means our failure, and the inbox retries the callback.
    """

    async def apply(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback], at: datetime) -> None: ...


class UnknownCallbackKind(LookupError):
    """A stored callback whose kind has no handler (one stored by another version of the bridge)."""


class CallbackHandlers:
    """The registry: kind → handler. Registering is done at start-up, before any callback arrives."""

    def __init__(self, handlers: Iterable[tuple[str, CallbackHandler]] = ()) -> None:
        self._by_kind: dict[str, CallbackHandler] = {}
        for kind, handler in handlers:
            self.register(kind, handler)

    def register(self, kind: str, handler: CallbackHandler) -> None:
        if not _KIND.fullmatch(kind):
            raise ValueError(f"a callback kind is 1-16 of a-z, 0-9 and _, starting with a letter: {kind!r}")
        if kind in self._by_kind:
            raise ValueError(f"callback kind {kind!r} already has a handler")
        self._by_kind[kind] = handler

    def handles(self, kind: str) -> bool:
        return kind in self._by_kind

    def handler(self, kind: str) -> CallbackHandler:
        try:
            return self._by_kind[kind]
        except KeyError:
            raise UnknownCallbackKind(kind) from None

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._by_kind)


def standard_handlers(policy: ReconcilePolicy) -> CallbackHandlers:
    """The handlers this version of the bridge ships: STK alone, for now."""
    return CallbackHandlers([(STK, StkHandler(policy))])


def register_payout_handlers(handlers: CallbackHandlers, reader: InitiatorResultReader, policy: PayoutPolicy) -> None:
    """B2C Results and queue timeouts, Transaction Status Results and queue timeouts."""
    handlers.register(B2C_RESULT, B2cResultHandler(reader))
    handlers.register(B2C_TIMEOUT, B2cTimeoutHandler(reader, policy))
    handlers.register(STATUS_RESULT, StatusResultHandler(reader, policy))
    handlers.register(STATUS_TIMEOUT, StatusResultHandler(reader, policy, timeout=True))
