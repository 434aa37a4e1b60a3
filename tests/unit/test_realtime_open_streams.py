"""The counting behind the caps on open SSE streams: per credential, per address, nothing counted for
a refusal, every place given back once."""

from __future__ import annotations

import pytest

from mpesa_bridge.core.errors import RateLimited
from mpesa_bridge.realtime.sse import OpenStreams


def test_each_cap_refuses_the_one_past_it_and_counts_nothing_for_it() -> None:
    streams = OpenStreams(per_credential=2, per_address=3, retry_after=2)
    releases = [streams.admit("key:key_a", "10.0.0.1") for _ in range(2)]
    with pytest.raises(RateLimited) as by_key:
        streams.admit("key:key_a", "10.0.0.2")
    assert by_key.value.code == "too_many_streams" and "for this key" in by_key.value.message
    assert by_key.value.retry_after == 2 and by_key.value.limit == 2

    releases.append(streams.admit("client secret:pay_1", "10.0.0.1"))  # the address's third
    with pytest.raises(RateLimited) as by_address:
        streams.admit("client secret:pay_2", "10.0.0.1")
    assert "from this address" in by_address.value.message
    assert streams.counts() == {"key:key_a": 2, "client secret:pay_1": 1, "address:10.0.0.1": 3}

    for release in releases:
        release()
        release()  # a second call gives nothing back twice
    assert streams.counts() == {}
    streams.admit("key:key_a", "10.0.0.1")  # and there is room again
