"""Reading a catalog in the on-disk format: listing and review events, product ground truth, local media.

Format (what ``stream.catalog.generate.generate_catalog`` writes, and what users provide for their own data):
``listings.jsonl`` (one ``toys.listings.v1`` upsert per line), ``reviews.jsonl`` (``toys.reviews.v1``
events, optional), ``products.json`` (listing_id -> product id; equal ids are the same product) and
``media/``: a media URI ending in ``/<folder>/<file>`` is read from ``media/<folder>/<file>``.
"""

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from stream.contracts.events import EventDecoder, ListingEvent, ReviewEvent
from stream.errors import CatalogError, InvalidEventError

LISTINGS = "listings.jsonl"
REVIEWS = "reviews.jsonl"
PRODUCTS = "products.json"
MEDIA = "media"


@dataclass(frozen=True)
class CatalogRecords:
    """The decoded catalog: listings in file order, each one's product, and reviews by listing."""

    listings: list[ListingEvent]
    families: list[str]
    reviews: dict[str, list[ReviewEvent]]  # listing_id -> posted reviews, in file order
    media_dir: Path


def _lines(path: Path) -> list[bytes]:
    try:
        return [line for line in path.read_bytes().splitlines() if line.strip()]
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc}; point --catalog at a catalog folder") from exc


def _decode_listings(path: Path, decoder: EventDecoder) -> list[ListingEvent]:
    listings = []
    for number, line in enumerate(_lines(path), start=1):
        try:
            event = decoder.decode_listing(line, None, keyed=False)
        except InvalidEventError as exc:
            raise CatalogError(f"{path} line {number} is not a valid listing event: {exc.message}") from exc
        if event.type == "listing.upserted":
            listings.append(event)
    return listings


def _decode_reviews(path: Path, decoder: EventDecoder) -> dict[str, list[ReviewEvent]]:
    reviews: dict[str, list[ReviewEvent]] = defaultdict(list)
    if not path.exists():
        return reviews
    for number, line in enumerate(_lines(path), start=1):
        try:
            event = decoder.decode_review(line, None, keyed=False)
        except InvalidEventError as exc:
            raise CatalogError(f"{path} line {number} is not a valid review event: {exc.message}") from exc
        if event.type == "review.posted":
            reviews[event.listing_id].append(event)
    return reviews


def read_catalog(catalog_dir: Path, decoder: EventDecoder) -> CatalogRecords:
    """Decode a catalog folder; listings without a product in ``products.json`` are an error.

    Raises:
        CatalogError: a file is missing or invalid, or a listing has no product.
    """
    listings = _decode_listings(catalog_dir / LISTINGS, decoder)
    try:
        products = json.loads((catalog_dir / PRODUCTS).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogError(
            f"cannot read {catalog_dir / PRODUCTS}: {exc}; it maps listing_id to product id"
        ) from exc
    missing = [event.listing_id for event in listings if event.listing_id not in products]
    if missing:
        raise CatalogError(
            f"{len(missing)} listings (first {missing[0]!r}) have no product in {PRODUCTS}; add them"
        )
    families = [str(products[event.listing_id]) for event in listings]
    return CatalogRecords(
        listings, families, _decode_reviews(catalog_dir / REVIEWS, decoder), catalog_dir / MEDIA
    )


def fingerprint(catalog_dir: Path) -> str:
    """SHA-256 of the catalog's event and product files (media are named by them), to validate caches."""
    digest = hashlib.sha256()
    for name in (LISTINGS, REVIEWS, PRODUCTS):
        path = catalog_dir / name
        digest.update(name.encode() + (path.read_bytes() if path.exists() else b""))
    return digest.hexdigest()


def media_path(uri: str, media_dir: Path) -> Path:
    """The local file of a media URI: ``media_dir/<folder>/<file>`` from the URI's last two path segments.

    >>> media_path("http://127.0.0.1:18080/images/toy-0001-1.png", Path("media")).as_posix()
    'media/images/toy-0001-1.png'
    """
    segments = [unquote(part) for part in urlparse(uri).path.split("/") if part not in ("", ".", "..")]
    return media_dir.joinpath(*segments[-2:])


def query_text(event: ListingEvent) -> str:
    """A search text written from a listing: its title without the brand name and model number.

    >>> from datetime import UTC, datetime
    >>> event = ListingEvent("e", "listing.upserted", "l", 1, datetime.now(UTC), title="Blokko Castle - Red",
    ...                      brand="Blokko")
    >>> query_text(event)
    'Castle - Red'
    """
    title = event.title or ""
    if event.brand:
        brand = rf"(?:\b(?:by|from)\s+)?{re.escape(event.brand)}(?:'s)?"
        title = re.sub(brand, " ", title, flags=re.IGNORECASE)
    model_number = event.attributes.get("model_number")
    if isinstance(model_number, str) and model_number.strip():
        title = title.replace(model_number.strip(), " ")
    return re.sub(r"\s+", " ", title).strip(" -,|/:") or (event.title or "")
