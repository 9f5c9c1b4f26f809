"""The benchmark's events and encoder inputs, made from a generated catalog (pure apart from reading files)."""

import itertools
import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from stream.contracts.events import EventDecoder
from stream.contracts.schemas import format_rfc3339
from stream.contracts.shapes import MAX_PHOTOS
from stream.features.text import text_of
from stream.inference.listing import ListingInputs
from stream.media.images import preprocess_image
from stream.media.video import sample_frames

Event = dict[str, Any]
MEDIA_FIELDS = ("images", "videos")


def bench_listings(
    templates: Sequence[Event], run_id: str, count: int, now: datetime, *, text_only: bool
) -> list[Event]:
    """``count`` new listings (ids ``bench-<run_id>-<n>``) cycling through the catalog's ``templates``.

    Each gets its own ``event_id``, the current ``occurred_at`` and a title no other listing has (the run
    and the number appended), so no text can come from the encoder cache; ``text_only`` drops photos and
    videos.

    >>> from datetime import UTC
    >>> [e["listing_id"] for e in bench_listings([{"listing_id": "t", "images": []}], "r1", 2, datetime.now(UTC), text_only=True)]
    ['bench-r1-000000', 'bench-r1-000001']
    """
    events = []
    for number, template in zip(range(count), itertools.cycle(templates), strict=False):
        event = {key: value for key, value in template.items() if not (text_only and key in MEDIA_FIELDS)}
        event |= {
            "listing_id": f"bench-{run_id}-{number:06d}",
            "event_id": uuid.uuid4().hex,
            "occurred_at": format_rfc3339(now),
            # A title of its own, so that no listing's text is served from the encoder cache.
            "title": f"{template.get('title', '')} ({run_id}-{number})",
        }
        events.append(event)
    return events


def review_burst(
    listing_ids: Sequence[str], templates: Sequence[Event], per_listing: int, now: datetime
) -> list[Event]:
    """``per_listing`` new reviews of each listing, their texts cycling through the catalog's reviews."""
    texts = itertools.cycle(templates)
    reviews = []
    for listing_id in listing_ids:
        for _ in range(per_listing):
            event_id = uuid.uuid4().hex
            reviews.append(
                next(texts)
                | {
                    "event_id": event_id,
                    "review_id": f"bench-{event_id[:16]}",
                    "listing_id": listing_id,
                    "occurred_at": format_rfc3339(now),
                }
            )
    return reviews


def deletions(events: Iterable[Event], now: datetime) -> list[Event]:
    """A ``listing.deleted`` for each listing, one version above its upsert (to clean up after a run)."""
    return [
        {
            "event_id": uuid.uuid4().hex,
            "type": "listing.deleted",
            "listing_id": event["listing_id"],
            "version": event["version"] + 1,
            "occurred_at": format_rfc3339(now),
        }
        for event in events
    ]


def encoder_inputs(events: Sequence[Event], media_dir: Path, schemas_dir: Path) -> list[ListingInputs]:
    """What the worker would hand ``listing_embedder`` for each event: its text, and its first
    ``MAX_PHOTOS`` photos and video frames decoded from the catalog's own media files (so the ceiling
    times the models, not HTTP)."""
    decoder = EventDecoder(schemas_dir)
    inputs = []
    for event in events:
        decoded = decoder.decode_listing(json.dumps(event).encode(), None, keyed=False)
        photos = [
            preprocess_image(_local(media_dir, uri).read_bytes()) for uri in decoded.images[:MAX_PHOTOS]
        ]
        frames = sample_frames(_local(media_dir, decoded.videos[0]).read_bytes()) if decoded.videos else None
        inputs.append(ListingInputs(text_of(decoded), photos=photos, frames=frames))
    return inputs


def _local(media_dir: Path, uri: str) -> Path:
    """The catalog file a media URI serves (``http://host/images/x.png`` -> ``media_dir/images/x.png``)."""
    kind, name = uri.rsplit("/", 2)[-2:]
    return media_dir / kind / name
