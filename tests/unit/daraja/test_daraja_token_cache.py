"""TokenCache on its own: freshness, single flight, invalidation, shared failures."""

import asyncio

import pytest

from mpesa_bridge.daraja import AccessToken, TokenCache

KEY = ("https://sandbox.safaricom.co.ke", "consumer-key")


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    """Hands out token-1, token-2, ... and counts the calls; can be held at a gate."""

    def __init__(self, expires_in: int = 3599, gate: asyncio.Event | None = None) -> None:
        self.calls = 0
        self.expires_in = expires_in
        self.gate = gate
        self.error: Exception | None = None

    async def __call__(self) -> AccessToken:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return AccessToken(f"token-{self.calls}", self.expires_in)


async def test_token_is_fetched_once_and_reused() -> None:
    cache, fetch = TokenCache(), Fetcher()

    assert await cache.get(KEY, fetch) == "token-1"
    assert await cache.get(KEY, fetch) == "token-1"
    assert fetch.calls == 1


async def test_concurrent_callers_share_one_fetch() -> None:
    gate = asyncio.Event()
    cache, fetch = TokenCache(), Fetcher(gate=gate)

    tasks = [asyncio.create_task(cache.get(KEY, fetch)) for _ in range(200)]
    await asyncio.sleep(0)
    gate.set()
    tokens = await asyncio.gather(*tasks)

    assert set(tokens) == {"token-1"}
    assert fetch.calls == 1


@pytest.mark.parametrize(("elapsed", "fetches"), [(0, 1), (3479 - 1, 1), (3479, 2), (5000, 2)])
async def test_refresh_happens_when_fewer_than_margin_seconds_remain(elapsed: float, fetches: int) -> None:
    clock = FakeClock()
    cache, fetch = TokenCache(refresh_margin=120, clock=clock), Fetcher(expires_in=3599)
    await cache.get(KEY, fetch)

    clock.now += elapsed
    await cache.get(KEY, fetch)

    assert fetch.calls == fetches


async def test_a_token_shorter_lived_than_the_margin_is_still_reused_for_half_its_life() -> None:
    clock = FakeClock()
    cache, fetch = TokenCache(refresh_margin=120, clock=clock), Fetcher(expires_in=60)
    await cache.get(KEY, fetch)

    clock.now += 29
    await cache.get(KEY, fetch)
    assert fetch.calls == 1
    clock.now += 2
    await cache.get(KEY, fetch)
    assert fetch.calls == 2


async def test_keys_are_independent() -> None:
    cache, fetch = TokenCache(), Fetcher()

    sandbox = await cache.get(KEY, fetch)
    production = await cache.get(("https://api.safaricom.co.ke", "consumer-key"), fetch)
    other_app = await cache.get((KEY[0], "another-key"), fetch)

    assert [sandbox, production, other_app] == ["token-1", "token-2", "token-3"]


async def test_invalidate_drops_the_current_token() -> None:
    cache, fetch = TokenCache(), Fetcher()
    token = await cache.get(KEY, fetch)

    cache.invalidate(KEY, token)

    assert await cache.get(KEY, fetch) == "token-2"


async def test_invalidate_keeps_a_newer_token() -> None:
    cache, fetch = TokenCache(), Fetcher()
    old = await cache.get(KEY, fetch)
    cache.invalidate(KEY, old)
    await cache.get(KEY, fetch)

    cache.invalidate(KEY, old)  # a slow caller reporting the token everyone already replaced

    assert await cache.get(KEY, fetch) == "token-2"
    assert fetch.calls == 2


def test_invalidate_of_an_unknown_key_is_a_no_op() -> None:
    TokenCache().invalidate(KEY, "whatever")


async def test_waiters_share_a_failed_fetch_instead_of_stampeding() -> None:
    gate = asyncio.Event()
    cache, fetch = TokenCache(), Fetcher(gate=gate)
    fetch.error = RuntimeError("oauth down")

    tasks = [asyncio.create_task(cache.get(KEY, fetch)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in results)
    assert fetch.calls == 1


async def test_a_later_caller_tries_again_after_a_failure() -> None:
    cache, fetch = TokenCache(), Fetcher()
    fetch.error = RuntimeError("oauth down")
    with pytest.raises(RuntimeError):
        await cache.get(KEY, fetch)

    fetch.error = None

    assert await cache.get(KEY, fetch) == "token-2"


async def test_a_cancelled_fetch_does_not_cancel_the_waiters() -> None:
    gate = asyncio.Event()
    cache, fetch = TokenCache(), Fetcher(gate=gate)
    first = asyncio.create_task(cache.get(KEY, fetch))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get(KEY, fetch))
    await asyncio.sleep(0)

    first.cancel()
    await asyncio.sleep(0)
    gate.set()

    assert await second == "token-2"
    assert first.cancelled()


def test_negative_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="refresh_margin"):
        TokenCache(refresh_margin=-1)


def test_access_token_repr_hides_the_value() -> None:
    assert "sekrit-token" not in repr(AccessToken("sekrit-token", 3599))
