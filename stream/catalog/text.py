"""Seller-style titles, descriptions and attributes for the sample catalog (pure)."""

import random
from typing import Any

from stream.catalog.product import Product
from stream.catalog.seller import Seller

CNY_PER_USD = 7.2


def _years(months: int) -> int:
    return max(months // 12, 1) if months else 0


def _detail_en(product: Product) -> str:
    return f"{product.pieces} Pieces" if product.pieces else f"{product.size[0].title()} Size"


def _detail_zh(product: Product) -> str:
    return f"{product.pieces}块" if product.pieces else product.size[1]


def _words(*parts: str | None) -> str:
    """The parts a seller gave, space-separated."""
    return " ".join(part for part in parts if part)


def _after(separator: str, part: str | None) -> str:
    return f"{separator}{part}" if part else ""


def title_en(product: Product, style: int, seller: Seller) -> str:
    """A title in seller style number ``style`` (any int; styles repeat), with only what ``seller`` gives."""
    p, noun = product, product.kind.noun[0]
    subject = p.subject[0] if seller.names_subject else None
    model = seller.model if seller.model_place in ("title", "both") else None
    colour = seller.colour.title() if seller.colour and style % 2 else seller.colour
    styles = (
        f"{_words(seller.brand, subject, noun)}, {_detail_en(p)}{_after(', ', colour)}{_after(' #', model)}",
        (
            f"{_words(colour, subject, noun)}{_after(' by ', seller.brand)} - Ages {_years(p.age_min_months)}+"
            f"{_after(' ', model)}"
        ),
        (
            f"{noun}: {_words(subject, 'Edition')}{_after(' | ', colour)}{_after(' | ', seller.brand)}"
            f"{_after(' | ', model)}"
        ),
        f"Kids {_words(subject, noun)}{_after(' in ', colour)}, {_detail_en(p)}{_after(' - ', model)}",
        f"{_words(seller.brand, model, subject, noun)} for Boys and Girls{_after(', ', colour)}",
    )
    return styles[style % len(styles)]


def title_zh(product: Product, style: int, seller: Seller) -> str:
    """A Simplified Chinese title in seller style number ``style``."""
    p, noun = product, product.kind.noun[1]
    subject = p.subject[1] if seller.names_subject else ""
    colour, brand = seller.colour or "", seller.brand
    model = seller.model if seller.model_place in ("title", "both") else None
    styles = (
        f"{_words(brand, subject + noun, colour, _detail_zh(p))} 适合{_years(p.age_min_months)}岁以上{_after(' ', model)}",
        f"{_after('【', brand)}{'】' if brand else ''}{colour}{subject}{noun} {_detail_zh(p)}{_after(' ', model)}",
        f"儿童{subject}{noun} {_words(colour, model)} 正品",
    )
    return styles[style % len(styles)]


def description_en(product: Product, seller: Seller, rng: random.Random) -> str:
    """A description: some of the product's facts plus seller fluff, in a seller-specific order."""
    p = product
    name = _words(seller.colour, p.subject[0].lower() if p.names_subject else None, p.kind.noun[0].lower())
    facts = [
        f"This {name}{_after(' from ', seller.brand)}{_after(' is made of ', seller.material)}.",
        f"Suitable for ages {_years(p.age_min_months)} to {_years(p.age_max_months)}." if seller.age else "",
        "Batteries required." if p.kind.batteries else "No batteries needed.",
        *(f"{trait[0].upper()}{trait[1:]}." for trait in rng.sample(p.kind.praise, 2)),
        f"Includes {p.pieces} pieces." if p.pieces else "",
    ]
    facts = [fact for fact in facts if fact]
    fluff = ("Ships in gift-ready packaging.", "Free returns within 30 days.", "A great birthday present!")
    rng.shuffle(facts)
    return " ".join(facts[: rng.randint(2, len(facts))] + rng.sample(fluff, rng.randint(0, 2)))


def description_zh(product: Product, seller: Seller, rng: random.Random) -> str:
    """A Simplified Chinese description of some of the product's facts."""
    p = product
    subject = p.subject[1] if p.names_subject else ""
    facts = [
        f"这款{seller.colour or ''}{subject}{p.kind.noun[1]}{_after('由', seller.brand)}{'出品' if seller.brand else ''}。",
        f"材质：{seller.material}。" if seller.material else "",
        f"适合{_years(p.age_min_months)}到{_years(p.age_max_months)}岁的孩子。" if seller.age else "",
        "需要电池。" if p.kind.batteries else "无需电池。",
        f"{rng.choice(p.kind.praise_zh)}。",
        f"共{p.pieces}块。" if p.pieces else "",
    ]
    facts = [fact for fact in facts if fact]
    rng.shuffle(facts)
    return "".join(facts[: rng.randint(2, len(facts))]) + rng.choice(("包邮。", "送礼佳品。", ""))


def _optional_en(product: Product, seller: Seller, rng: random.Random) -> list[tuple[str, Any]]:
    p = product
    return [
        ("material", seller.material),
        ("size", p.size[0]),
        ("batteries_required", p.kind.batteries),
        ("theme", p.subject[0].lower() if p.names_subject else None),
        (rng.choice(("pieces", "piece_count")), p.pieces),
    ]


def _optional_zh(product: Product, seller: Seller) -> list[tuple[str, Any]]:
    p = product
    return [
        ("材质", seller.material),
        ("尺寸", p.size[1]),
        ("需要电池", p.kind.batteries),
        ("块数", p.pieces),
    ]


def attributes(product: Product, seller: Seller, rng: random.Random, *, chinese: bool) -> dict[str, Any]:
    """Seller attributes: what ``seller`` gives, under its key names, in a shuffled order.

    The colour, model number and barcode follow the seller's habits; it drops each other fact at random.
    """
    optional = _optional_zh(product, seller) if chinese else _optional_en(product, seller, rng)
    items = [item for item in optional if item[1] is not None and rng.random() >= seller.drop]
    if seller.colour:
        items.append(("颜色" if chinese else rng.choice(("colour", "color", "Color")), seller.colour))
    if seller.model_place in ("attributes", "both"):
        items.append(
            ("型号" if chinese else rng.choice(("model_number", "model", "Item model number")), seller.model)
        )
    if seller.gtin:
        items.append(("gtin", product.gtin))
    rng.shuffle(items)
    return dict(items)


def price(product: Product, rng: random.Random, *, chinese: bool) -> dict[str, str]:
    """A seller's price: the product's price with a few percent of variation, in USD or CNY."""
    amount = product.price_usd * rng.uniform(0.93, 1.07)
    if chinese:
        return {"amount": f"{round(amount * CNY_PER_USD)}.00", "currency": "CNY"}
    return {"amount": f"{max(int(amount), 1)}.{rng.choice(('99', '49', '95', '00'))}", "currency": "USD"}
