"""The shared in-memory ports (`tests/fixtures/memory.py`) behave like the storage adapter where a
use case could tell the difference: copies, explicit saves, commit or roll back, read-only reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.status import PaymentStatus
from tests.fixtures.memory import MemoryDatabase, ReadOnly, UnsavedChanges
from tests.unit.core.test_core_reconcile_pacing import make_payment

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def _payment(n: int = 1) -> Payment:
    return make_payment(n, project_id="prj_1")


async def test_a_use_case_that_forgets_to_save_is_caught_and_nothing_is_committed() -> None:
    db = MemoryDatabase([_payment()])
    with pytest.raises(UnsavedChanges, match=r"Payment pay_00001: status"):
        async with db.write() as uow:
            payment = await uow.payments.lock("pay_00001")
            assert payment is not None
            payment.status = PaymentStatus.SUCCEEDED
    assert db.payment("pay_00001").status is PaymentStatus.PENDING


async def test_a_saved_change_is_committed_and_the_caller_holds_a_copy() -> None:
    original = _payment()
    db = MemoryDatabase([original])
    async with db.write() as uow:
        payment = await uow.payments.lock("pay_00001")
        assert payment is not None and payment is not original
        payment.status = PaymentStatus.SUCCEEDED
        await uow.payments.save(payment)
        payment.needs_attention = True  # after the save: must be saved again
        await uow.payments.save(payment)
    assert db.payment("pay_00001").status is PaymentStatus.SUCCEEDED
    assert db.payment("pay_00001").needs_attention is True
    assert original.status is PaymentStatus.PENDING


async def test_an_error_rolls_back_every_write() -> None:
    db = MemoryDatabase([_payment(1)])
    with pytest.raises(RuntimeError):
        async with db.write() as uow:
            await uow.payments.add(_payment(2))
            payment = await uow.payments.lock("pay_00001")
            assert payment is not None
            payment.status = PaymentStatus.FAILED
            await uow.payments.save(payment)
            raise RuntimeError("boom")
    assert set(db.committed.payments) == {"pay_00001"}
    assert db.payment("pay_00001").status is PaymentStatus.PENDING


async def test_a_read_unit_of_work_refuses_writes_and_does_not_check_saves() -> None:
    db = MemoryDatabase([_payment(1)])
    async with db.read() as uow:
        payment = await uow.payments.find("pay_00001")
        assert payment is not None
        payment.status = PaymentStatus.SUCCEEDED  # a value the caller may change: nothing is written
        with pytest.raises(ReadOnly):
            await uow.payments.add(_payment(2))
    assert db.payment("pay_00001").status is PaymentStatus.PENDING


async def test_overlapping_units_of_work_keep_each_others_writes() -> None:
    db = MemoryDatabase([_payment(1), _payment(2)])
    first, second = db.write(), db.write()
    async with first as a:
        async with second as b:
            two = await b.payments.lock("pay_00002")
            assert two is not None
            two.status = PaymentStatus.FAILED
            await b.payments.save(two)
        one = await a.payments.lock("pay_00001")
        assert one is not None
        one.status = PaymentStatus.SUCCEEDED
        await a.payments.save(one)
    assert db.payment("pay_00001").status is PaymentStatus.SUCCEEDED
    assert db.payment("pay_00002").status is PaymentStatus.FAILED
