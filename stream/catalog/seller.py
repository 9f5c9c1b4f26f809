"""How one seller writes up a product: which facts it gives, where the model number goes, its typos (pure)."""

import random
from dataclasses import dataclass
from typing import Literal

from stream.catalog.product import Product

ModelPlace = Literal["title", "attributes", "both", "nowhere"]
GTIN_SHARE = 0.6  # listings that carry the product's barcode as a ``gtin`` attribute
_PLACES: tuple[ModelPlace, ...] = ("title", "attributes", "both", "nowhere")


@dataclass(frozen=True)
class Seller:
    """One listing's habits: every name is already spelt the way this seller spells it."""

    brand: str | None  # None when the seller leaves the brand out
    colour: str | None
    material: str | None
    model: str
    model_place: ModelPlace
    gtin: bool
    age: bool  # gives the age range
    names_subject: bool  # names the subject in the title (descriptions still may)
    drop: float  # chance of leaving out each remaining attribute


def garble(word: str, rng: random.Random) -> str:
    """``word`` recased or with one letter dropped, swapped or doubled, the way hurried sellers type.

    Only letters are touched, so a word without letters (Chinese) comes back unchanged.
    """
    letters = [index for index, char in enumerate(word) if char.isascii() and char.isalpha()]
    if len(letters) < 3:
        return word
    at = rng.choice(letters[:-1])
    edits = (
        word.lower(),
        word.upper(),
        word[:at] + word[at + 1 :],
        word[:at] + word[at + 1] + word[at] + word[at + 2 :],
        word[:at] + word[at] + word[at:],
    )
    return rng.choice(edits)


def _spell(word: str, rng: random.Random, typos: float) -> str:
    return garble(word, rng) if rng.random() < typos else word


def _colour(product: Product, rng: random.Random, chinese: bool, typos: float) -> str | None:
    colour = product.colour
    if rng.random() < 0.25:
        return None
    names = (colour.zh, *colour.synonyms_zh) if chinese else (colour.en, *colour.synonyms)
    name = names[0] if rng.random() < 0.6 else rng.choice(names[1:])
    return _spell(name, rng, typos)


def _model(product: Product, rng: random.Random) -> str:
    """The model number as written: as printed, lower case, or without its hyphen."""
    return rng.choice((product.model, product.model, product.model.lower(), product.model.replace("-", "")))


def draw_seller(product: Product, rng: random.Random, *, chinese: bool) -> Seller:
    """The habits of the seller of one listing of ``product``.

    A product told from its siblings only by its model number always shows it somewhere.
    """
    typos = rng.choice((0.0, 0.0, 0.1, 0.3))
    places = _PLACES[:3] if product.differs_by == "model" else _PLACES
    return Seller(
        brand=_spell(product.brand, rng, typos) if rng.random() < 0.75 else None,
        colour=_colour(product, rng, chinese, typos),
        material=None
        if rng.random() < 0.3
        else _spell(product.kind.material[1 if chinese else 0], rng, typos),
        model=_model(product, rng),
        model_place=rng.choice(places),
        gtin=rng.random() < GTIN_SHARE,
        age=rng.random() < 0.8,
        names_subject=product.names_subject and rng.random() < 0.8,
        drop=rng.uniform(0.0, 0.5),
    )
