"""Reliability scenarios: an event log with updates, deletes, duplicates and out-of-order versions, its
expected final state computed from the log alone (never from what the worker did), and the check."""

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from stream.config import Settings
from stream.contracts.index import IndexSchema
from stream.store.listings import EmbeddingStore
from stream.store.reviews import ReviewStore

TITLES = ("Plush Koala", "Wooden Train Set", "Stacking Rings", "Kite, Delta Wing", "Puzzle Cube", "Baby Doll")


@dataclass
class EventLog:
    """Listing and review events in the order they are produced, with the state they must lead to."""

    listings: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    final_version: dict[str, int] = field(default_factory=dict)  # listing id -> highest version sent
    deleted: set[str] = field(default_factory=set)  # listings whose highest version is a delete
    review_counts: Counter[str] = field(default_factory=Counter)  # listing id -> reviews left


def listing_upsert(listing_id: str, version: int, rng: random.Random) -> dict[str, Any]:
    title = rng.choice(TITLES)
    return {
        "event_id": uuid.uuid4().hex, "type": "listing.upserted", "listing_id": listing_id, "version": version,
        "occurred_at": "2026-01-05T10:00:00Z", "title": f"{title} v{version}",
        "description": f"{title}, seller text revision {version}.", "brand": "Reliable",
        "categories": ["Test Toys"], "price": {"amount": f"{5 + version}.99", "currency": "EUR"},
    }  # fmt: skip


def listing_delete(listing_id: str, version: int) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex, "type": "listing.deleted", "listing_id": listing_id, "version": version,
        "occurred_at": "2026-01-05T11:00:00Z",
    }  # fmt: skip


def review(event_type: str, review_id: str, listing_id: str, rng: random.Random) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": uuid.uuid4().hex, "type": event_type, "review_id": review_id, "listing_id": listing_id,
        "occurred_at": "2026-02-01T10:00:00Z",
    }  # fmt: skip
    if event_type == "review.posted":
        event.update(rating=rng.randint(1, 5), title="Review", text=f"Opinion {rng.randint(0, 10**6)}",
                     helpful_votes=rng.randint(0, 20), verified_purchase=rng.random() < 0.5)  # fmt: skip
    return event


def event_log(prefix: str, listings: int, listing_events: int, reviews: int, seed: int) -> EventLog:
    """A log of at least ``listing_events`` listing events and ``reviews`` review events.

    Each listing gets versions 1..k, sent shuffled within a window (out of order), some twice
    (duplicates), and a tenth end with a delete followed by a late older upsert. Reviews go to
    listings that are never deleted; a fifth are deleted later, some posts are sent twice.
    """
    rng, log = random.Random(seed), EventLog()
    per_listing = max(2, listing_events // listings)
    for number in range(listings):
        listing_id = f"{prefix}-{number:05d}"
        versions = rng.randint(per_listing - 1, per_listing + 1)
        events = [listing_upsert(listing_id, version, rng) for version in range(1, versions + 1)]
        if number % 10 == 0:
            events += [
                listing_delete(listing_id, versions + 1),
                listing_upsert(listing_id, versions - 1, rng),
            ]
            log.deleted.add(listing_id)
        events += [dict(rng.choice(events)) for _ in range(rng.randint(0, 1))]
        rng.shuffle(events)
        log.listings += events
        log.final_version[listing_id] = max(event["version"] for event in events)
    live = sorted(set(log.final_version) - log.deleted)
    for number in range(reviews):
        listing_id, review_id = rng.choice(live), f"{prefix}-rev-{number:05d}"
        posted = review("review.posted", review_id, listing_id, rng)
        log.reviews.append(posted)
        if rng.random() < 0.1:
            log.reviews.append(dict(posted))
        if rng.random() < 0.2:
            log.reviews.append(review("review.deleted", review_id, listing_id, rng))
        else:
            log.review_counts[listing_id] += 1
    rng.shuffle(log.listings)
    return log


@dataclass(frozen=True)
class Outcome:
    """How far the stored state is from the expected one."""

    done: int  # listings in their expected final state (reviews included)
    lost: int  # listings with nothing stored
    stale: int  # listings stored at an older version, or not deleted, or with the wrong review count

    def as_row(self) -> dict[str, int]:
        return {"done": self.done, "lost": self.lost, "stale": self.stale}


async def compare(settings: Settings, log: EventLog) -> Outcome:
    """Read every listing's version guard and review aggregate back and compare with the log."""
    schema = IndexSchema.from_yaml(settings.schemas_dir / "embedding_index.yaml")
    redis = Redis.from_url(settings.redis_url)
    try:
        ids = sorted(log.final_version)
        states = await EmbeddingStore(redis, schema).guard_states(ids)
        aggregates = await ReviewStore(redis, schema).aggregates(ids)
    finally:
        await redis.aclose()
    done = lost = stale = 0
    for listing_id in ids:
        state = states[listing_id]
        if state is None:
            lost += 1
        elif (
            state.version == log.final_version[listing_id]
            and state.deleted == (listing_id in log.deleted)
            and aggregates[listing_id].count == log.review_counts[listing_id]
        ):
            done += 1
        else:
            stale += 1
    return Outcome(done, lost, stale)
