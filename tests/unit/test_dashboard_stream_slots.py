"""The dashboard's live streams are capped per session; a release frees one slot, once."""

from __future__ import annotations

from mpesa_bridge.dashboard.pages.overview import StreamSlots


def test_a_session_holds_at_most_its_limit_and_a_release_frees_one_slot_once() -> None:
    slots = StreamSlots(2)
    first, second = slots.admit("s1"), slots.admit("s1")
    assert first is not None and second is not None
    assert slots.admit("s1") is None and slots.admit("s2") is not None  # other sessions are not affected
    first()
    first()  # idempotent: the stream's close may be reported twice
    assert slots.count("s1") == 1
    assert slots.admit("s1") is not None and slots.admit("s1") is None
