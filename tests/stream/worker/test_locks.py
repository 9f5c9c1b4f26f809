"""Per-listing locks."""

import asyncio

from stream.worker.locks import ListingLocks


async def test_same_listing_is_serialised_and_others_are_not() -> None:
    locks, order = ListingLocks(), []

    async def work(name: str, ids: list[str], pause: float) -> None:
        async with locks.hold(ids):
            order.append(f"{name} in")
            await asyncio.sleep(pause)
            order.append(f"{name} out")

    await asyncio.gather(work("a", ["x", "y"], 0.05), work("b", ["y"], 0.0), work("c", ["z"], 0.0))

    assert order.index("b in") > order.index("a out"), "b waits for a on y"
    assert order.index("c in") < order.index("a out"), "c does not wait"
    assert len(locks) == 0, "idle locks are forgotten"


async def test_cancelled_waiter_does_not_release_the_holders_lock() -> None:
    locks = ListingLocks()
    async with locks.hold(["x"]):
        waiter = asyncio.ensure_future(locks.hold(["x"]).__aenter__())
        await asyncio.sleep(0.01)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        assert len(locks) == 1
    assert len(locks) == 0
