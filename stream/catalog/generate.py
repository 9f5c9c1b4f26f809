"""Deterministic offline sample catalog: listing and review events, product ground truth and media."""

import json
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from stream.catalog import reviews as review_text
from stream.catalog import text
from stream.catalog.product import Product, Sibling, make_product, siblings
from stream.catalog.seller import draw_seller
from stream.catalog.vocab import COLOURS, KINDS, Colour, ToyKind, Words
from stream.contracts.schemas import format_rfc3339
from stream.errors import CatalogError

CATALOG_FORMAT = 2  # bump when the generator's output changes, so old catalogs are regenerated
LISTINGS_PER_PRODUCT = (2, 5)
CHINESE_SHARE = 0.1
VIDEO_SHARE = 0.7
NO_PHOTO_SHARE = 0.15  # listings whose seller uploaded no photo
GROUPED_SHARE = 1 / 3  # products with a near-identical sibling: another subject or another model number
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
_NAMESPACE = uuid.UUID("6f1d0c3e-5b7a-4c1e-9a53-2d0b8e7f4a10")


@dataclass(frozen=True)
class CatalogSummary:
    """What :func:`generate_catalog` left in ``out_dir``."""

    out_dir: Path
    families: int
    listings: int
    reviews: int
    images: int
    videos: int
    generated: bool  # False when a catalog with the same parameters was already there

    @property
    def listings_path(self) -> Path:
        """``listings.jsonl``: one ``listing.upserted`` event per line."""
        return self.out_dir / "listings.jsonl"

    @property
    def reviews_path(self) -> Path:
        """``reviews.jsonl``: one ``review.posted`` event per line."""
        return self.out_dir / "reviews.jsonl"

    @property
    def products_path(self) -> Path:
        """``products.json``: listing_id -> family id, the ground truth for "same product"."""
        return self.out_dir / "products.json"

    @property
    def media_dir(self) -> Path:
        """Folder to serve over HTTP at ``media_base_url`` (``images/``, ``videos/``)."""
        return self.out_dir / "media"


def _check_counts(families: int, listings: int, reviews: int) -> None:
    low, high = LISTINGS_PER_PRODUCT
    most = sum(len(kind.subjects) for kind in KINDS) * len(COLOURS)
    if not 1 <= families <= most:
        raise CatalogError(f"families={families} is out of range; choose 1 to {most}")
    if not low * families <= listings <= high * families:
        raise CatalogError(
            f"listings={listings} cannot give {families} families {low}-{high} listings each; "
            f"choose listings between {low * families} and {high * families}"
        )
    if reviews < 0:
        raise CatalogError(f"reviews={reviews} is negative; choose 0 or more")


def _check(families: int, listings: int, reviews: int, media_base_url: str) -> None:
    _check_counts(families, listings, reviews)
    if not media_base_url.startswith(("http://", "https://")):
        raise CatalogError(
            f"media_base_url {media_base_url!r} is not http(s); pass e.g. http://127.0.0.1:8765"
        )


def _designs(kind: ToyKind, rng: random.Random) -> list[tuple[Words, Colour]]:
    """Every (subject, colour) of ``kind``, ordered so that the first ones differ in both."""
    subjects, colours = rng.sample(kind.subjects, len(kind.subjects)), rng.sample(COLOURS, len(COLOURS))
    n = len(subjects)
    return [(subjects[j % n], colours[(j % n + j // n) % len(colours)]) for j in range(n * len(colours))]


Design = tuple[ToyKind, Words, Colour]


def _design_order(rng: random.Random) -> list[Design]:
    """Every design dealt round-robin over the kinds, so neighbouring designs look different."""
    kinds = rng.sample(KINDS, len(KINDS))
    designs = [_designs(kind, rng) for kind in kinds]
    plan: list[Design] = []
    for turn in range(max(len(options) for options in designs)):
        plan.extend(
            (kind, *options[turn])
            for kind, options in zip(kinds, designs, strict=True)
            if turn < len(options)
        )
    return plan


def _group_plan(rng: random.Random, families: int) -> list[tuple[int, Sibling | None]]:
    """Size and kind of every near-identical group (1 for a product on its own), in a random order.

    About GROUPED_SHARE of the products are in groups of 2-3, half told apart by subject, half by model.
    """
    grouped = round(families * GROUPED_SHARE)
    sizes = [2] * (grouped // 2)
    if grouped % 2 and sizes:
        sizes[-1] = 3
    order: tuple[Sibling, Sibling] = ("subject", "model") if rng.random() < 0.5 else ("model", "subject")
    plan: list[tuple[int, Sibling | None]] = [(n, order[i % 2]) for i, n in enumerate(sizes)]
    plan += [(1, None)] * (families - sum(sizes))
    rng.shuffle(plan)
    return plan


def _key(kind: ToyKind, subject: Words, colour: Colour) -> tuple[str, str, str]:
    return kind.shape, subject[0], colour.en


def _group(
    rng: random.Random, base: Product, size: int, differs_by: Sibling, used: set[tuple[str, str, str]]
) -> list[Product]:
    """``base`` and its ``size - 1`` near-identical siblings; by model when no free subject is left."""
    kind, colour, number = base.kind, base.colour, int(base.family_id.removeprefix("fam-"))
    free = [s for s in kind.subjects if _key(kind, s, colour) not in used]
    if differs_by == "subject" and len(free) < size - 1:
        differs_by = "model"
    subjects = rng.sample(free, size - 1) if differs_by == "subject" else []
    used.update(_key(kind, subject, colour) for subject in subjects)
    ids = [f"fam-{number + k:03d}" for k in range(1, size)]
    return siblings(base, ids, differs_by, subjects, rng)


def plan_products(rng: random.Random, families: int) -> list[Product]:
    """Products of distinct designs, about a third of them in groups that look or read nearly the same.

    Args:
        rng: source of every choice.
        families: number of products.

    Returns:
        ``families`` products, ids ``fam-001`` on; a group's products have consecutive ids.
    """
    designs, used = _design_order(rng), set[tuple[str, str, str]]()
    products: list[Product] = []
    for size, differs_by in _group_plan(rng, families):
        kind, subject, colour = next(d for d in designs if _key(*d) not in used)
        used.add(_key(kind, subject, colour))
        base = make_product(f"fam-{len(products) + 1:03d}", kind, subject, colour, rng)
        products.extend([base] if differs_by is None else _group(rng, base, size, differs_by, used))
    return products


def _assign_listings(rng: random.Random, products: list[Product], listings: int) -> list[Product]:
    """The product of each listing, shuffled so one product's listings are not neighbours."""
    low, high = LISTINGS_PER_PRODUCT
    counts = [low] * len(products)
    for _ in range(listings - low * len(products)):
        counts[rng.choice([i for i, n in enumerate(counts) if n < high])] += 1
    owners = [product for product, n in zip(products, counts, strict=True) for _ in range(n)]
    rng.shuffle(owners)
    return owners


def _event_id(seed: int, name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{seed}/{name}"))


def _title_styles(owners: list[Product]) -> list[int]:
    """A title style per listing: the sellers of one product each take the next style along."""
    first: dict[str, int] = {}
    sellers: Counter[str] = Counter()
    styles = []
    for product in owners:
        styles.append(first.setdefault(product.family_id, len(first)) + sellers[product.family_id])
        sellers[product.family_id] += 1
    return styles


def _listing_event(
    seed: int,
    number: int,
    product: Product,
    style: int,
    chinese: bool,
    media: dict[str, list[dict[str, str]]],
) -> dict[str, Any]:
    listing_id, rng = f"toy-{number:04d}", random.Random(f"{seed}/listing/{number}")
    kind, seller = product.kind, draw_seller(product, rng, chinese=chinese)
    event: dict[str, Any] = {
        "event_id": _event_id(seed, f"{listing_id}/1"),
        "type": "listing.upserted",
        "listing_id": listing_id,
        "version": 1,
        "occurred_at": format_rfc3339(START + timedelta(minutes=7 * number + rng.randint(0, 6))),
        "title": text.title_zh(product, style, seller) if chinese else text.title_en(product, style, seller),
        "description": (text.description_zh if chinese else text.description_en)(product, seller, rng),
        "brand": seller.brand,
        "categories": ["玩具", kind.category_zh] if chinese else list(kind.categories[rng.randint(0, 1) :]),
        "attributes": text.attributes(product, seller, rng, chinese=chinese),
        "age_min_months": product.age_min_months if seller.age else None,
        "age_max_months": product.age_max_months if seller.age and rng.random() < 0.7 else None,
        "price": text.price(product, rng, chinese=chinese),
        **media,
        "locale": "zh-CN" if chinese else rng.choice(("en-US", "en-US", "en-GB")),
    }
    return {key: value for key, value in event.items() if value is not None}


def _write_media(
    out_dir: Path, seed: int, number: int, product: Product, video: bool, base_url: str
) -> dict[str, list[dict[str, str]]]:
    """Render a listing's 0-3 photos and, if ``video``, a clip; return their ``images``/``videos`` fields.

    A listing without photos has no ``images`` field.
    """
    # Imported here: rendering needs Pillow and PyAV, which the events alone (listing_events_without_media,
    # what Triton's int8 check reads) do not, and which the Triton image does not install.
    from stream.catalog.render import draw_toy, photo_style, render_image, write_video

    rng = np.random.default_rng([seed, number])
    toy = draw_toy(product.kind.shape, product.colour.rgb, product.kind.subjects.index(product.subject))
    photos = 0 if rng.random() < NO_PHOTO_SHARE else int(rng.integers(1, 4))
    style, media = photo_style(rng), dict[str, list[dict[str, str]]]()
    for index in range(1, photos + 1):
        name = f"toy-{number:04d}-{index}.png"
        render_image(toy, rng, style).save(out_dir / "media" / "images" / name, format="PNG")
        media.setdefault("images", []).append({"uri": f"{base_url}/images/{name}"})
    if video:
        name = f"toy-{number:04d}.mp4"
        write_video(out_dir / "media" / "videos" / name, toy, rng)
        media["videos"] = [{"uri": f"{base_url}/videos/{name}"}]
    return media


Media = Callable[[int, Product, bool], dict[str, list[dict[str, str]]]]  # number, product, video -> fields


def _listings(rng: random.Random, seed: int, owners: list[Product], media: Media) -> list[dict[str, Any]]:
    """The listing events, ``toy-0001`` first, with the ``images``/``videos`` fields ``media`` gives each."""
    numbers = range(1, len(owners) + 1)
    chinese = set(rng.sample(numbers, round(len(owners) * CHINESE_SHARE)))
    video = set(rng.sample(numbers, round(len(owners) * VIDEO_SHARE)))
    return [
        _listing_event(seed, n, product, style, n in chinese, media(n, product, n in video))
        for n, product, style in zip(numbers, owners, _title_styles(owners), strict=True)
    ]


def listing_events_without_media(
    *, seed: int, families: int, listings: int
) -> list[tuple[dict[str, Any], str]]:
    """The listing events ``generate_catalog`` makes for these numbers, without photos or video (so nothing
    is rendered), each with its product's family id.

    Raises:
        CatalogError: if the numbers do not fit together.
    """
    _check_counts(families, listings, 0)
    rng = random.Random(seed)
    owners = _assign_listings(rng, plan_products(rng, families), listings)
    events = _listings(rng, seed, owners, lambda number, product, video: {})
    return [(event, product.family_id) for event, product in zip(events, owners, strict=True)]


def _review_event(seed: int, number: int, listing: dict[str, Any], product: Product) -> dict[str, Any]:
    review_id, rng = f"rev-{number:05d}", random.Random(f"{seed}/review/{number}")
    chinese = listing["locale"] == "zh-CN" and rng.random() < 0.8
    stars = review_text.rating(product, rng)
    write = review_text.review_zh if chinese else review_text.review_en
    title, body = write(product, stars, rng)
    posted = datetime.fromisoformat(listing["occurred_at"]) + timedelta(
        days=rng.randint(1, 120), minutes=rng.randint(0, 1439)
    )
    event = {
        "event_id": _event_id(seed, f"{review_id}/posted"),
        "type": "review.posted",
        "review_id": review_id,
        "listing_id": listing["listing_id"],
        "occurred_at": format_rfc3339(posted),
        "rating": stars,
        "title": title if rng.random() < 0.6 else None,
        "text": body,
        "helpful_votes": int(rng.expovariate(0.3)) if rng.random() < 0.6 else None,
        "verified_purchase": rng.random() < 0.8 if rng.random() < 0.85 else None,
        "locale": "zh-CN" if chinese else "en-US",
    }
    return {key: value for key, value in event.items() if value is not None}


def _reviews(
    rng: random.Random, seed: int, count: int, listings: list[dict[str, Any]], owners: list[Product]
) -> list[dict[str, Any]]:
    """``count`` reviews; a few popular listings get many, some get none. Sorted by time."""
    popularity = [rng.paretovariate(1.2) for _ in listings]
    picks = rng.choices(range(len(listings)), weights=popularity, k=count)
    events = [_review_event(seed, n + 1, listings[i], owners[i]) for n, i in enumerate(picks)]
    return sorted(events, key=lambda event: (event["occurred_at"], event["review_id"]))


def _write_jsonl(path: Path, events: list[dict[str, Any]]) -> None:
    lines = (json.dumps(event, ensure_ascii=False) + "\n" for event in events)
    path.write_text("".join(lines), encoding="utf-8")


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _clear(out_dir: Path) -> None:
    """Remove what an earlier, different catalog left, and the manifest first, so a crash leaves no match."""
    for name in ("manifest.json", "listings.jsonl", "reviews.jsonl", "products.json"):
        (out_dir / name).unlink(missing_ok=True)
    for pattern in ("media/images/toy-*.png", "media/videos/toy-*.mp4"):
        for path in out_dir.glob(pattern):
            path.unlink()
    for folder in ("images", "videos"):
        (out_dir / "media" / folder).mkdir(parents=True, exist_ok=True)


def _existing(out_dir: Path, params: dict[str, Any]) -> CatalogSummary | None:
    try:
        manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("format") != CATALOG_FORMAT or manifest.get("params") != params:
        return None
    return CatalogSummary(out_dir=out_dir, generated=False, **manifest["counts"])


def generate_catalog(
    out_dir: Path,
    *,
    seed: int = 7,
    families: int = 60,
    listings: int = 200,
    reviews: int = 500,
    media_base_url: str,
) -> CatalogSummary:
    """Write a sample catalog: the same arguments always give byte-identical JSONL.

    Does nothing when ``out_dir/manifest.json`` records the same parameters.

    Args:
        out_dir: where ``listings.jsonl``, ``reviews.jsonl``, ``products.json``, ``manifest.json``
            and ``media/`` go; created if missing.
        seed: seed of every random choice.
        families: number of distinct products; each is sold as 2-5 listings. About a third are in
            groups of near-identical products that differ only in their photo or their model number.
        listings: number of listing events.
        reviews: number of review events.
        media_base_url: URL at which ``out_dir/media`` will be served, e.g. ``http://127.0.0.1:8765``.

    Returns:
        Counts and paths of what was written (or found).

    Raises:
        CatalogError: if the numbers do not fit together or the URL is not http(s).
    """
    _check(families, listings, reviews, media_base_url)
    base_url = media_base_url.rstrip("/")
    params = {
        "seed": seed,
        "families": families,
        "listings": listings,
        "reviews": reviews,
        "media_base_url": base_url,
    }
    found = _existing(out_dir, params)
    if found is not None:
        return found
    _clear(out_dir)
    rng = random.Random(seed)
    owners = _assign_listings(rng, plan_products(rng, families), listings)
    events = _listings(
        rng, seed, owners, lambda n, product, video: _write_media(out_dir, seed, n, product, video, base_url)
    )
    _write_jsonl(out_dir / "listings.jsonl", events)
    _write_jsonl(out_dir / "reviews.jsonl", _reviews(rng, seed, reviews, events, owners))
    _write_json(
        out_dir / "products.json", {e["listing_id"]: p.family_id for e, p in zip(events, owners, strict=True)}
    )
    counts = {
        "families": families,
        "listings": listings,
        "reviews": reviews,
        "images": sum(len(event.get("images", ())) for event in events),
        "videos": sum(len(event.get("videos", ())) for event in events),
    }
    _write_json(out_dir / "manifest.json", {"format": CATALOG_FORMAT, "params": params, "counts": counts})
    return CatalogSummary(out_dir=out_dir, generated=True, **counts)
