"""Seller-style titles, descriptions, attributes and reviews for the sample catalog (pure)."""

import random
from dataclasses import dataclass
from typing import Any

from stream.catalog.vocab import SIZES, Colour, ToyKind, Words

CNY_PER_USD = 7.2


@dataclass(frozen=True)
class Product:
    """One real product (a family); every seller's listing of it describes the same facts."""

    family_id: str
    kind: ToyKind
    subject: Words
    colour: Colour
    brand: str
    model: str
    size: Words
    pieces: int | None
    age_min_months: int
    age_max_months: int
    price_usd: float
    quality: float  # mean star rating its reviews scatter around


def make_product(
    family_id: str, kind: ToyKind, subject: Words, colour: Colour, rng: random.Random
) -> Product:
    """Draw the facts of one product of ``kind``; ``subject`` and ``colour`` tell it apart from its siblings."""
    brand = rng.choice(kind.brands)
    age_min = rng.choice(kind.age_min_months)
    return Product(
        family_id=family_id,
        kind=kind,
        subject=subject,
        colour=colour,
        brand=brand,
        model=f"{brand[:2].upper()}-{rng.randint(100, 9999)}",
        size=rng.choice(SIZES),
        pieces=None if kind.pieces is None else rng.randint(*kind.pieces) // 5 * 5 or 5,
        age_min_months=age_min,
        age_max_months=age_min + rng.choice((48, 72, 96, 120)),
        price_usd=rng.uniform(*kind.price_usd),
        quality=rng.uniform(2.6, 4.8),
    )


def _years(months: int) -> int:
    return max(months // 12, 1) if months else 0


def _detail_en(product: Product) -> str:
    return f"{product.pieces} Pieces" if product.pieces else f"{product.size[0].title()} Size"


def _detail_zh(product: Product) -> str:
    return f"{product.pieces}块" if product.pieces else product.size[1]


def title_en(product: Product, style: int) -> str:
    """A title in seller style number ``style`` (any int; styles repeat)."""
    p, noun, subject, colour = product, product.kind.noun[0], product.subject[0], product.colour.en
    styles = (
        f"{p.brand} {subject} {noun}, {_detail_en(p)}, {colour.title()}",
        f"{colour.title()} {subject} {noun} by {p.brand} - Ages {_years(p.age_min_months)}+",
        f"{noun}: {subject} Edition ({colour}) | {p.brand}",
        f"Kids {subject} {noun} in {colour.title()}, {_detail_en(p)}",
        f"{p.brand} {p.model} {subject} {noun} for Boys and Girls, {colour.title()}",
    )
    return styles[style % len(styles)]


def title_zh(product: Product, style: int) -> str:
    """A Simplified Chinese title in seller style number ``style``."""
    p, noun, subject, colour = product, product.kind.noun[1], product.subject[1], product.colour.zh
    styles = (
        f"{p.brand} {subject}{noun} {colour} {_detail_zh(p)} 适合{_years(p.age_min_months)}岁以上",
        f"【{p.brand}】{colour}{subject}{noun} {_detail_zh(p)}",
        f"儿童{subject}{noun} {colour} {p.model} 正品",
    )
    return styles[style % len(styles)]


def description_en(product: Product, rng: random.Random) -> str:
    """A description: the product's facts plus seller fluff, in a seller-specific order."""
    p = product
    name = f"{p.colour.en} {p.subject[0].lower()} {p.kind.noun[0].lower()}"
    facts = [
        f"This {name} from {p.brand} is made of {p.kind.material[0]}.",
        f"Suitable for ages {_years(p.age_min_months)} to {_years(p.age_max_months)}.",
        "Batteries required." if p.kind.batteries else "No batteries needed.",
        f"Model {p.model}.",
        *(f"{trait[0].upper()}{trait[1:]}." for trait in rng.sample(p.kind.praise, 2)),
    ]
    if p.pieces:
        facts.insert(1, f"Includes {p.pieces} pieces.")
    fluff = ("Ships in gift-ready packaging.", "Free returns within 30 days.", "A great birthday present!")
    rng.shuffle(facts)
    return " ".join(facts[: rng.randint(4, len(facts))] + rng.sample(fluff, rng.randint(0, 2)))


def description_zh(product: Product, rng: random.Random) -> str:
    """A Simplified Chinese description of the product's facts."""
    p = product
    facts = [
        f"这款{p.colour.zh}{p.subject[1]}{p.kind.noun[1]}由{p.brand}出品。",
        f"材质：{p.kind.material[1]}。",
        f"适合{_years(p.age_min_months)}到{_years(p.age_max_months)}岁的孩子。",
        "需要电池。" if p.kind.batteries else "无需电池。",
        f"{rng.choice(p.kind.praise_zh)}。",
    ]
    if p.pieces:
        facts.insert(1, f"共{p.pieces}块。")
    rng.shuffle(facts)
    return "".join(facts) + rng.choice(("包邮。", "送礼佳品。", ""))


def attributes(product: Product, rng: random.Random, *, chinese: bool) -> dict[str, Any]:
    """Seller attributes: the same facts under each seller's key names, in a shuffled order."""
    p = product
    if chinese:
        items = [
            ("颜色", p.colour.zh),
            ("材质", p.kind.material[1]),
            ("型号", p.model),
            ("尺寸", p.size[1]),
            ("需要电池", p.kind.batteries),
            ("块数", p.pieces),
        ]
    else:
        items = [
            (rng.choice(("colour", "color")), p.colour.en),
            ("material", p.kind.material[0]),
            ("model_number", p.model),
            ("size", p.size[0]),
            ("batteries_required", p.kind.batteries),
            ("theme", p.subject[0].lower()),
            (rng.choice(("pieces", "piece_count")), p.pieces),
        ]
    items = [item for item in items if item[1] is not None]
    rng.shuffle(items)
    return dict(items[: rng.randint(3, len(items))])


def price(product: Product, rng: random.Random, *, chinese: bool) -> dict[str, str]:
    """A seller's price: the product's price with a few percent of variation, in USD or CNY."""
    amount = product.price_usd * rng.uniform(0.93, 1.07)
    if chinese:
        return {"amount": f"{round(amount * CNY_PER_USD)}.00", "currency": "CNY"}
    return {"amount": f"{max(int(amount), 1)}.{rng.choice(('99', '49', '95', '00'))}", "currency": "USD"}


def rating(product: Product, rng: random.Random) -> int:
    """A star rating scattered around the product's quality."""
    return min(5, max(1, round(rng.gauss(product.quality, 0.9))))


def review_en(product: Product, stars: int, rng: random.Random) -> tuple[str, str]:
    """A (title, text) review in English that mentions the product's traits."""
    p = product
    openers = {5: "Love it!", 4: "Really good.", 3: "It's okay.", 2: "Disappointed.", 1: "Do not buy."}
    good, (bad, worse) = rng.choice(p.kind.praise), rng.sample(p.kind.complaints, 2)
    middle = {
        5: f"{good[0].upper()}{good[1:]}.",
        4: f"{good[0].upper()}{good[1:]}, but {bad}.",
        3: f"{good[0].upper()}{good[1:]}, but {bad}.",
        2: f"{bad[0].upper()}{bad[1:]}.",
        1: f"{bad[0].upper()}{bad[1:]} and {worse}.",
    }[stars]
    who = rng.choice(("My daughter", "My son", "Our twins", "My nephew", "My granddaughter"))
    age = rng.randint(_years(p.age_min_months) or 1, _years(p.age_max_months))
    colour_line = f"The {p.colour.en} {p.subject[0].lower()} {p.kind.noun[0].lower()} looks like the photos."
    text = " ".join(
        (
            openers[stars],
            middle,
            f"{who} ({age}) {'loves' if stars >= 4 else 'tried'} it.",
            colour_line if rng.random() < 0.5 else "",
        )
    )
    title = {
        5: "Perfect gift",
        4: "Great value",
        3: "Mixed feelings",
        2: "Not as expected",
        1: "Poor quality",
    }
    return title[stars], text.strip()


def review_zh(product: Product, stars: int, rng: random.Random) -> tuple[str, str]:
    """A (title, text) review in Simplified Chinese."""
    p = product
    good, bad = rng.choice(p.kind.praise_zh), rng.choice(p.kind.complaints_zh)
    body = {
        5: f"非常满意，{good}。",
        4: f"不错，{good}，不过{bad}。",
        3: f"一般，{good}，但是{bad}。",
        2: f"有点失望，{bad}。",
        1: f"很差，{bad}。",
    }[stars]
    text = (
        f"{body}孩子{'很喜欢' if stars >= 4 else '玩了几次'}这款{p.colour.zh}{p.subject[1]}{p.kind.noun[1]}。"
    )
    title = {5: "五星好评", 4: "值得购买", 3: "还可以", 2: "不太满意", 1: "不推荐"}
    return title[stars], text
