"""The facts of one sample product, its near-identical siblings and its EAN-13 barcode (pure)."""

import random
from dataclasses import dataclass, replace
from typing import Literal

from stream.catalog.vocab import SIZES, Colour, ToyKind, Words

Sibling = Literal["subject", "model"]  # what alone tells a product from its near-identical group


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
    gtin: str  # EAN-13 on the box
    group: str  # family_id of the first product of its near-identical group; its own when alone
    differs_by: Sibling | None = None  # None when it has no near-identical sibling

    @property
    def names_subject(self) -> bool:
        """Whether sellers name the subject: not when the photo alone tells it from its siblings."""
        return self.differs_by != "subject"


def ean13_check_digit(digits: str) -> str:
    """The check digit of a 12-digit EAN-13 body: weights 1, 3, 1, 3, ... from the left.

    >>> ean13_check_digit("400638133393")
    '1'
    """
    total = sum(int(digit) * (3 if index % 2 else 1) for index, digit in enumerate(digits))
    return str(-total % 10)


def draw_gtin(rng: random.Random) -> str:
    """A random EAN-13 with a valid check digit."""
    body = f"{rng.randint(10**11, 10**12 - 1)}"
    return body + ean13_check_digit(body)


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
        model=f"{brand[:2].upper()}-{rng.randint(100, 9000)}",
        size=rng.choice(SIZES),
        pieces=None if kind.pieces is None else rng.randint(*kind.pieces) // 5 * 5 or 5,
        age_min_months=age_min,
        age_max_months=age_min + rng.choice((48, 72, 96, 120)),
        price_usd=rng.uniform(*kind.price_usd),
        quality=rng.uniform(2.6, 4.8),
        gtin=draw_gtin(rng),
        group=family_id,
    )


def siblings(
    base: Product, family_ids: list[str], differs_by: Sibling, subjects: list[Words], rng: random.Random
) -> list[Product]:
    """``base`` and one near-identical product per id: same box and text, another subject or model number.

    Args:
        base: the first product of the group.
        family_ids: ids of the others.
        differs_by: ``"subject"`` (another drawing, same model number) or ``"model"`` (same drawing).
        subjects: one subject per id when ``differs_by`` is ``"subject"``; ignored otherwise.
        rng: source of the model numbers, barcodes and qualities.

    Returns:
        The group, ``base`` first.
    """
    prefix, number = base.model.split("-")
    group = [replace(base, differs_by=differs_by)]
    for index, family_id in enumerate(family_ids):
        number = str(int(number) + rng.randint(1, 9))
        group.append(
            replace(
                base,
                family_id=family_id,
                subject=subjects[index] if differs_by == "subject" else base.subject,
                model=base.model if differs_by == "subject" else f"{prefix}-{number}",
                quality=rng.uniform(2.6, 4.8),
                gtin=draw_gtin(rng),
                differs_by=differs_by,
            )
        )
    return group
