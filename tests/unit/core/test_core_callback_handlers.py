"""The registry of callback handlers (`core.callbacks.handlers`): one handler per kind."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pytest

from mpesa_bridge.core.callbacks.handlers import (
    KNOWN_KINDS,
    STK,
    CallbackHandlers,
    UnknownCallbackKind,
    standard_handlers,
)
from mpesa_bridge.core.callbacks.stk import StkHandler
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.payments.policy import ReconcilePolicy
from mpesa_bridge.core.ports import UnitOfWork


class Nothing:
    async def apply(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback], at: datetime) -> None:
        return None


def test_the_bridge_ships_the_stk_handler_alone() -> None:
    handlers = standard_handlers(ReconcilePolicy())
    assert handlers.kinds == (STK,)
    assert isinstance(handlers.handler(STK), StkHandler)
    assert not handlers.handles("b2c_result")


def test_a_kind_without_a_handler_is_not_handled() -> None:
    handlers = CallbackHandlers()
    assert not handlers.handles("b2c_result")
    with pytest.raises(UnknownCallbackKind):
        handlers.handler("b2c_result")


def test_a_registered_kind_is_handled_by_its_handler() -> None:
    handler = Nothing()
    handlers = CallbackHandlers([("b2c_result", handler)])
    assert handlers.handles("b2c_result")
    assert handlers.handler("b2c_result") is handler


def test_a_kind_has_one_handler() -> None:
    handlers = CallbackHandlers([("b2c_result", Nothing())])
    with pytest.raises(ValueError, match="already"):
        handlers.register("b2c_result", Nothing())


@pytest.mark.parametrize("kind", ["", "B2C", "b2c/result", "1stk", "a" * 17, "stk result"])
def test_a_kind_is_a_short_lower_case_name(kind: str) -> None:
    with pytest.raises(ValueError):
        CallbackHandlers().register(kind, Nothing())


def test_every_documented_kind_fits_the_kind_column_and_daraja_url_rules() -> None:
    for kind in KNOWN_KINDS:
        CallbackHandlers().register(kind, Nothing())  # ≤ 16 characters, lower case
        assert not any(word in kind for word in ("mpesa", "safaricom", "query", "exe", "cmd", "sql"))
