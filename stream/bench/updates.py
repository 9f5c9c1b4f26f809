"""What a price-only update costs against a full one, end to end: Kafka -> worker -> Redis.

Each round streams the listings twice through the running worker. First as new listings (fresh ids,
the shared encoder cache emptied first, so every photo is fetched and every encoder runs), then the
same listings again at the next version with only their price changed. A round's time runs from the
first event produced to the last version readable in Redis; the ratio compares the medians.
"""

import asyncio
import statistics
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from stream.config import Settings
from stream.contracts.index import IndexSchema
from stream.errors import FeatureServiceError
from stream.producer import produce, reliable_producer
from stream.store.client import EmbeddingClient
from stream.store.encoder_cache import EncoderCache

POLL_S = 0.01  # how often Redis is asked whether the round is stored


class UpdatesTimeout(FeatureServiceError):
    """A round's listings did not all arrive in Redis in time."""


def fresh_copies(listings: Sequence[Mapping[str, Any]], run: str) -> list[dict[str, Any]]:
    """The listings as new ones: own ids and event ids, version 1 (pure).

    >>> fresh_copies([{"listing_id": "toy-1", "version": 7}], "r1")[0]["listing_id"]
    'toy-1@r1'
    """
    return [
        {
            **listing,
            "listing_id": f"{listing['listing_id']}@{run}",
            "event_id": uuid.uuid4().hex,
            "version": 1,
        }
        for listing in listings
    ]


def repriced(listings: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The next version of each listing with only its price changed (pure).

    >>> repriced([{"listing_id": "a", "version": 1, "price": {"amount": "2.00", "currency": "EUR"}}])[0]["price"]
    {'amount': '3.00', 'currency': 'EUR'}
    """
    changed = []
    for listing in listings:
        price = listing.get("price") or {"amount": "0.00", "currency": "EUR"}
        amount = f"{float(price['amount']) + 1:.2f}"
        changed.append(
            {
                **listing,
                "version": int(listing["version"]) + 1,
                "event_id": uuid.uuid4().hex,
                "price": {**price, "amount": amount},
            }
        )
    return changed


async def _stream(
    settings: Settings, client: EmbeddingClient, events: Sequence[dict[str, Any]], timeout_s: float
) -> float:
    """Produce ``events`` and return the seconds until every one's version is stored.

    Raises:
        UpdatesTimeout: they were not all stored within ``timeout_s``.
    """
    ids, version = [event["listing_id"] for event in events], max(int(e["version"]) for e in events)
    producer = reliable_producer(settings.kafka_bootstrap)
    await producer.start()
    try:
        started = time.perf_counter()
        await produce(producer, [(event, settings.listings_topic) for event in events])
        while time.perf_counter() - started < timeout_s:
            stored = await client.stored_versions(ids)
            if all(found is not None and found >= version for found in stored.values()):
                return time.perf_counter() - started
            await asyncio.sleep(POLL_S)
    finally:
        await producer.stop()
    raise UpdatesTimeout(
        f"{len(events)} listing events were not all stored within {timeout_s:g} s; is the worker running "
        "(`toyfuse stack status`)? Check its log, or give the run more time"
    )


async def update_costs(
    settings: Settings, listings: Sequence[Mapping[str, Any]], rounds: int = 3, timeout_s: float = 600.0
) -> dict[str, Any]:
    """Time full upserts against price-only updates of the same listings through the running pipeline.

    Args:
        settings: the stack to measure (its worker must be consuming).
        listings: ``listing.upserted`` events to stream (their ids are replaced by fresh ones each round).
        rounds: how many times both kinds of update are timed; the medians are compared.
        timeout_s: the longest one round's streaming may take.

    Returns:
        ``listings``, ``rounds``, the seconds of every round (``full_s``, ``price_only_s``), their medians,
        ``ratio`` (median price-only / median full; the target is <= 0.05) and the medians per listing.

    Raises:
        UpdatesTimeout: a round's listings were not all stored in time.
    """
    client = EmbeddingClient.from_settings(settings)
    redis = Redis.from_url(settings.redis_url)
    cache = EncoderCache(redis, IndexSchema.from_yaml(settings.schemas_dir / "embedding_index.yaml"))
    full, price_only = [], []
    try:
        for _ in range(rounds):
            await cache.clear()
            new = fresh_copies(listings, uuid.uuid4().hex[:8])
            full.append(await _stream(settings, client, new, timeout_s))
            price_only.append(await _stream(settings, client, repriced(new), timeout_s))
    finally:
        await redis.aclose()
        await client.close()
    return cost_summary(len(listings), full, price_only)


def cost_summary(listings: int, full: Sequence[float], price_only: Sequence[float]) -> dict[str, Any]:
    """The figures :func:`update_costs` returns, from the rounds' seconds (pure).

    >>> cost_summary(10, [2.0, 4.0], [0.1, 0.1])["ratio"]
    0.0333
    """
    full_median, price_median = statistics.median(full), statistics.median(price_only)
    return {
        "listings": listings,
        "rounds": len(full),
        "full_s": list(full),
        "price_only_s": list(price_only),
        "full_median_s": full_median,
        "price_only_median_s": price_median,
        "full_ms_per_listing": 1000 * full_median / listings,
        "price_only_ms_per_listing": 1000 * price_median / listings,
        "ratio": round(price_median / full_median, 4),
    }
