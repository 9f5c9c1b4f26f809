"""Weak product keys of listings (GTIN, brand + model number, Amazon parent ASIN) for training without labels."""

import re

from stream.contracts.events import AttributeValue, ListingEvent

GTIN_ATTRIBUTES = frozenset(
    {"gtin", "gtin8", "gtin12", "gtin13", "gtin14", "ean", "ean8", "ean13", "upc", "upca", "barcode"}
)
MODEL_ATTRIBUTES = frozenset({"modelnumber", "itemmodelnumber", "model", "mpn", "型号"})
PARENT_ASIN_ATTRIBUTES = frozenset({"parentasin"})
GTIN_LENGTHS = (8, 12, 13, 14)
VALUE_SEPARATORS = re.compile(r"[,;/|]")  # list attributes arrive joined (see amazon_fields.attributes_of)


def attribute_name(name: str) -> str:
    """An attribute name compared loosely: casefolded, without spaces, punctuation or underscores.

    >>> attribute_name("Item model number"), attribute_name("parent_ASIN")
    ('itemmodelnumber', 'parentasin')
    """
    return re.sub(r"[\W_]+", "", name.casefold())


def gtin_check_digit(body: str) -> int:
    """The GS1 check digit of the digits before it (weights 3, 1, 3, ... from the right).

    >>> gtin_check_digit("400638133393")
    1
    """
    total = sum(int(digit) * (3 if i % 2 == 0 else 1) for i, digit in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def gtin14(value: AttributeValue) -> str | None:
    """A GTIN-8/12/13/14 as a zero-padded GTIN-14, or None when it is not one with a valid check digit.

    Spaces and hyphens inside the number are ignored. An integer attribute has lost its leading zeros,
    so any integer of at most 14 digits is padded. All zeros (a placeholder) is refused.

    >>> gtin14("4006381333931"), gtin14("036000 291452"), gtin14(36000291452), gtin14("4006381333932")
    ('04006381333931', '00036000291452', '00036000291452', None)
    """
    if isinstance(value, bool | float):
        return None
    digits = str(value) if isinstance(value, int) else re.sub(r"[\s-]", "", value)
    if not (digits.isascii() and digits.isdigit()):
        return None
    if len(digits) not in GTIN_LENGTHS and not (isinstance(value, int) and len(digits) <= 14):
        return None
    padded = digits.zfill(14)
    if not int(padded) or gtin_check_digit(padded[:13]) != int(padded[13]):
        return None
    return padded


def _compact(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


def _values(event: ListingEvent, names: frozenset[str]) -> list[AttributeValue]:
    """The values of the attributes whose loose name is in ``names``, list attributes split."""
    found: list[AttributeValue] = []
    for name, value in event.attributes.items():
        if attribute_name(name) in names:
            found.extend(VALUE_SEPARATORS.split(value) if isinstance(value, str) else [value])
    return found


def weak_key(event: ListingEvent) -> str:
    """A key that listings of one product are likely to share; "" when the listing has none.

    The most specific key that applies wins: a valid GTIN (``gtin:<GTIN-14>``), then brand and model
    number casefolded without punctuation (``model:<brand>|<model>``), then the Amazon parent ASIN
    (``asin:<ASIN>``, which groups the variants of one product).

    >>> from datetime import UTC, datetime
    >>> def listing(**attributes: AttributeValue) -> ListingEvent:
    ...     return ListingEvent("e", "listing.upserted", "l", 1, datetime.now(UTC), brand="Blokko",
    ...                         attributes=attributes)
    >>> weak_key(listing(EAN="4006381333931", model_number="X-1")), weak_key(listing(model_number="x 1"))
    ('gtin:04006381333931', 'model:blokko|x1')
    >>> weak_key(listing(parent_asin=" b00abc ")), weak_key(listing(UPC="123"))
    ('asin:B00ABC', '')
    """
    gtins = [gtin for gtin in map(gtin14, _values(event, GTIN_ATTRIBUTES)) if gtin]
    if gtins:
        return f"gtin:{gtins[0]}"
    brand = _compact(event.brand or "")
    models = [_compact(str(value)) for value in _values(event, MODEL_ATTRIBUTES)]
    if brand and any(models):
        return f"model:{brand}|{next(model for model in models if model)}"
    asins = [str(value).strip().upper() for value in _values(event, PARENT_ASIN_ATTRIBUTES)]
    return next((f"asin:{asin}" for asin in asins if asin), "")
