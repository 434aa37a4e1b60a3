"""A read unit of work cannot write, in the types: mypy rejects a write verb inside `read()`, both
through the core's port (`UnitOfWorkFactory`) and through the storage adapter (`Database`).

The snippets are type-checked, never run (no database is touched)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]

HEADER = """
from datetime import datetime
from mpesa_bridge.core.payments.entity import InboundCallback, Payment
from mpesa_bridge.core.ports import UnitOfWorkFactory
from mpesa_bridge.core.projects import Project
from mpesa_bridge.storage.db import Database
"""

WRITES = {
    "payments.add": "await uow.payments.add(payment)",
    "payments.lock": "await uow.payments.lock(payment.id)",
    "payments.adopt_daraja_ids": "await uow.payments.adopt_daraja_ids(payment.id, 'm', 'c', at)",
    "payments.lock_by_callback_tokens": "await uow.payments.lock_by_callback_tokens(['t'])",
    "events.add": "await uow.events.add(event)",
    "evidence.add": "await uow.evidence.add(evidence)",
    "callbacks.add_many": "await uow.callbacks.add_many([callback])",
    "callbacks.lock_many": "await uow.callbacks.lock_many(['cb'])",
    "projects.add": "await uow.projects.add(project)",
    "projects.touch_key": "await uow.projects.touch_key('key', at)",
    "idempotency.bind": "await uow.idempotency.bind('s', 'k', 'o', 'r', None)",
    "payments.save": "await uow.payments.save(payment)",
    "payments.save_many": "await uow.payments.save_many([payment])",
    "callbacks.save_many": "await uow.callbacks.save_many([callback])",
    "projects.save": "await uow.projects.save(project)",
}


def _check(source: str, tmp_path: Path) -> list[str]:
    module = tmp_path / "snippet.py"
    module.write_text(HEADER + textwrap.dedent(source))
    # Our own config: the package found by path (mypy does not follow the editable install's
    # import hook), and a missing import an error rather than a silent Any.
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\nmypy_path = {ROOT / 'src'}\nplugins = pydantic.mypy\n")
    stdout, _stderr, _status = api.run(
        [
            "--config-file",
            str(config),
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(module),
        ]
    )
    return [line for line in stdout.splitlines() if ": error:" in line]


def _snippet(factory: str, method: str) -> tuple[str, dict[int, str]]:
    """One function per verb; the line of each verb's statement in the module mypy reads."""
    lines = ["from mpesa_bridge.core.payments.entity import OutboxEvent, PaymentEvidence"]
    where: dict[int, str] = {}
    for n, (verb, statement) in enumerate(WRITES.items()):
        lines += [
            f"async def use_{n}(db: {factory}, payment: Payment, event: OutboxEvent, evidence: PaymentEvidence,",
            "                callback: InboundCallback, project: Project, at: datetime) -> None:",
            f"    async with db.{method}() as uow:",
            f"        {statement}",
        ]
        where[HEADER.count("\n") + len(lines)] = verb
    return "\n".join(lines) + "\n", where


@pytest.mark.parametrize("factory", ["UnitOfWorkFactory", "Database"])
def test_a_write_verb_inside_read_is_a_type_error(factory: str, tmp_path: Path) -> None:
    source, where = _snippet(factory, "read")
    errors = _check(source, tmp_path)
    assert all("has no attribute" in e for e in errors), errors
    rejected = {where[int(e.split(":")[1])] for e in errors}
    assert rejected == set(WRITES)


@pytest.mark.parametrize("factory", ["UnitOfWorkFactory", "Database"])
def test_the_same_verbs_inside_write_type_check(factory: str, tmp_path: Path) -> None:
    source, _ = _snippet(factory, "write")
    assert _check(source, tmp_path) == []
