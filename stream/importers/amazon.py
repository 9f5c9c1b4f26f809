"""Convert the public Amazon Reviews 2023 JSONL files into toyfuse listing and review events."""

import gzip
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder
from stream.contracts.schemas import format_rfc3339
from stream.errors import CatalogError, InvalidEventError
from stream.importers.amazon_fields import (
    age_range_months,
    attributes_of,
    best_image,
    clean_text,
    http_uri,
    join_paragraphs,
    price_amount,
    review_id_of,
)

_NAMESPACE = uuid.UUID("0b7f3c55-2a86-4f0e-8d1b-7f4e5b8f6a21")
FALLBACK_LISTED_AT = datetime(2000, 1, 1, tzinfo=UTC)  # for products nobody reviewed
CURRENCY = "USD"  # the dataset's prices are amazon.com prices
LOCALE = "en-US"
AGE_DETAIL = "Manufacturer recommended age"
MAX_IMAGES, MAX_VIDEOS, MAX_CATEGORIES = 20, 5, 20  # schema limits


@dataclass(frozen=True)
class ImportSummary:
    """What :func:`convert_amazon` wrote, and how many records it skipped, by reason."""

    listings_path: Path
    reviews_path: Path
    listings: int
    reviews: int
    skipped_listings: dict[str, int] = field(default_factory=dict)
    skipped_reviews: dict[str, int] = field(default_factory=dict)


def event_id(kind: str, natural_id: str) -> str:
    """Deterministic event id, so converting twice gives the same events (replays, not duplicates)."""
    return str(uuid.uuid5(_NAMESPACE, f"amazon/{kind}/{natural_id}"))


def listing_event(meta: Mapping[str, Any], listed_at: datetime) -> dict[str, Any]:
    """A ``listing.upserted`` event (version 1) from one ``meta_*.jsonl`` record (pure; not yet validated)."""
    listing_id = str(meta.get("parent_asin") or "")
    details = meta.get("details")
    details = details if isinstance(details, Mapping) else {}
    age_min, age_max = age_range_months(details.get(AGE_DETAIL))
    paragraphs = (join_paragraphs(meta.get(name), 20000) for name in ("description", "features"))
    event: dict[str, Any] = {
        "event_id": event_id("listing", listing_id),
        "type": "listing.upserted",
        "listing_id": listing_id,
        "version": 1,
        "occurred_at": format_rfc3339(listed_at),
        "title": clean_text(meta.get("title"), 500),
        "description": "\n".join(part for part in paragraphs if part)[:20000],
        "brand": clean_text(meta.get("store"), 200) or None,
        "categories": _categories(meta),
        "attributes": attributes_of(details),
        "age_min_months": age_min,
        "age_max_months": age_max,
        "images": [{"uri": uri} for uri in map(best_image, _list(meta, "images")) if uri][:MAX_IMAGES],
        "videos": [{"uri": uri} for uri in map(_video_uri, _list(meta, "videos")) if uri][:MAX_VIDEOS],
        "locale": LOCALE,
    }
    amount = price_amount(meta.get("price"))
    if amount is not None:
        event["price"] = {"amount": amount, "currency": CURRENCY}
    return {name: value for name, value in event.items() if value is not None}


def posted_at(timestamp: object) -> datetime | None:
    """UTC time of a millisecond Unix timestamp; None when it is missing or out of range."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        return None
    try:
        return datetime.fromtimestamp(timestamp / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def review_event(record: Mapping[str, Any]) -> dict[str, Any]:
    """A ``review.posted`` event from one review record (pure; not yet validated).

    Raises:
        ValueError: the record has no usable timestamp.
    """
    at = posted_at(record.get("timestamp"))
    if at is None:
        raise ValueError(f"timestamp {record.get('timestamp')!r} is not a time in milliseconds")
    rating = record.get("rating")
    review_id = review_id_of(record)
    event: dict[str, Any] = {
        "event_id": event_id("review", review_id),
        "type": "review.posted",
        "review_id": review_id,
        "listing_id": str(record.get("parent_asin") or ""),
        "occurred_at": format_rfc3339(at),
        "rating": round(rating)
        if isinstance(rating, int | float) and not isinstance(rating, bool)
        else rating,
        "title": clean_text(record.get("title"), 500) or None,
        "text": clean_text(record.get("text"), 20000),
        "helpful_votes": record.get("helpful_vote"),
        "verified_purchase": record.get("verified_purchase"),
        "locale": LOCALE,
    }
    return {name: value for name, value in event.items() if value is not None}


def convert_amazon(
    meta_path: Path, reviews_path: Path, out_dir: Path, schemas_dir: Path = REPO_ROOT / "schemas"
) -> ImportSummary:
    """Write ``listings.jsonl`` and ``reviews.jsonl`` in ``out_dir`` from the two dataset files.

    Records are streamed (plain or ``.gz``); only product ids and first-review times are kept in
    memory. A listing's ``occurred_at`` is its earliest review, or 2000-01-01 when it has none.
    Every event is checked against its schema; records that cannot form a valid event are
    skipped and counted, as are reviews of products that were not converted.

    Args:
        meta_path: ``meta_Toys_and_Games.jsonl`` (or ``.jsonl.gz``).
        reviews_path: ``Toys_and_Games.jsonl`` (or ``.jsonl.gz``).
        out_dir: folder to write into (created if missing).
        schemas_dir: folder of the event schemas.

    Returns:
        Counts of written and skipped records.

    Raises:
        CatalogError: an input file cannot be read or the output cannot be written.
    """
    decoder = EventDecoder(schemas_dir)
    summary_listings, summary_reviews = out_dir / "listings.jsonl", out_dir / "reviews.jsonl"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        first_review = _first_review_times(reviews_path)
        with summary_listings.open("w", encoding="utf-8") as out:
            products, skipped_listings = _write_listings(meta_path, first_review, decoder, out)
        del first_review
        with summary_reviews.open("w", encoding="utf-8") as out:
            reviews, skipped_reviews = _write_reviews(reviews_path, products, decoder, out)
    except OSError as exc:
        raise CatalogError(
            f"cannot convert the Amazon dataset: {exc}; check the --meta, --reviews and --out paths"
        ) from exc
    return ImportSummary(summary_listings, summary_reviews, len(products), reviews,
                         dict(skipped_listings), dict(skipped_reviews))  # fmt: skip


def _records(path: Path, skipped: Counter[str] | None = None) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                yield record
            elif skipped is not None:
                skipped["invalid_json"] += 1


def _first_review_times(reviews_path: Path) -> dict[str, datetime]:
    first: dict[str, datetime] = {}
    for record in _records(reviews_path):
        product, at = record.get("parent_asin"), posted_at(record.get("timestamp"))
        if isinstance(product, str) and at is not None:
            first[product] = min(at, first.get(product, at))
    return first


def _write_listings(
    meta_path: Path, first_review: dict[str, datetime], decoder: EventDecoder, out: IO[str]
) -> tuple[set[str], Counter[str]]:
    products: set[str] = set()
    skipped: Counter[str] = Counter()
    for meta in _records(meta_path, skipped):
        product = meta.get("parent_asin")
        if isinstance(product, str) and product in products:
            skipped["duplicate_product"] += 1
            continue
        listed_at = (
            first_review.get(product, FALLBACK_LISTED_AT) if isinstance(product, str) else FALLBACK_LISTED_AT
        )
        event = listing_event(meta, listed_at)
        reason = _invalid_reason(decoder.decode_listing, event)
        if reason:
            skipped[reason] += 1
            continue
        products.add(event["listing_id"])
        out.write(json.dumps(event, ensure_ascii=False) + "\n")
    return products, skipped


def _write_reviews(
    reviews_path: Path, products: set[str], decoder: EventDecoder, out: IO[str]
) -> tuple[int, Counter[str]]:
    written, skipped = 0, Counter[str]()
    for record in _records(reviews_path, skipped):
        if record.get("parent_asin") not in products:
            skipped["unknown_product"] += 1
            continue
        try:
            event = review_event(record)
        except ValueError:
            skipped["invalid_timestamp"] += 1
            continue
        reason = _invalid_reason(decoder.decode_review, event)
        if reason:
            skipped[reason] += 1
            continue
        out.write(json.dumps(event, ensure_ascii=False) + "\n")
        written += 1
    return written, skipped


def _invalid_reason(decode: Callable[[bytes, bytes | None], object], event: Mapping[str, Any]) -> str | None:
    """Why the consumer would reject ``event`` (its dead-letter reason), or None when it is valid.

    It is checked with the key ``toyfuse replay`` produces it with: its listing_id.
    """
    try:
        decode(
            json.dumps(event, ensure_ascii=False).encode("utf-8"), str(event["listing_id"]).encode("utf-8")
        )
    except InvalidEventError as exc:
        return exc.reason
    return None


def _list(record: Mapping[str, Any], name: str) -> list[Any]:
    value = record.get(name)
    return value if isinstance(value, list) else []


def _categories(meta: Mapping[str, Any]) -> list[str]:
    names = [clean_text(name, 200) for name in _list(meta, "categories")]
    names = [name for name in dict.fromkeys(names) if name]
    main = clean_text(meta.get("main_category"), 200)
    return (names or ([main] if main else []))[:MAX_CATEGORIES]


def _video_uri(video: object) -> str | None:
    return http_uri(video.get("url")) if isinstance(video, Mapping) else None
