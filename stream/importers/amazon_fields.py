"""Pure converters from Amazon Reviews 2023 fields to toyfuse event fields."""

import hashlib
import html
import json
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from stream.contracts.events import AttributeValue

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?$")
_UNIT = r"(months?|years?|mos?\.?|yrs?\.?)"
_NUMBER = r"(\d+(?:\.\d+)?)"
_AGE_RANGE = re.compile(rf"^{_NUMBER}\s*{_UNIT}?\s*(?:-|–|to)\s*{_NUMBER}\s*{_UNIT}$", re.IGNORECASE)
_AGE_MIN = re.compile(rf"^{_NUMBER}\s*{_UNIT}\s*(?:and up|and older|\+)?$", re.IGNORECASE)
_IMAGE_SIZES = ("hi_res", "large", "thumb")  # best first
MAX_ATTRIBUTE_NAME = 100


def clean_text(value: object, limit: int) -> str:
    """Decode HTML entities and line breaks, trim, and cut to ``limit`` characters ('' for non-strings).

    >>> clean_text("Fun &amp; safe<br />Ages 3&#43;", 100)
    'Fun & safe\\nAges 3+'
    """
    if not isinstance(value, str):
        return ""
    return html.unescape(_BREAK.sub("\n", value)).strip()[:limit].strip()


def join_paragraphs(values: object, limit: int) -> str:
    """Clean a list of paragraphs and join them with new lines, cut to ``limit`` characters."""
    if not isinstance(values, list):
        return ""
    paragraphs = [clean_text(value, limit) for value in values]
    return "\n".join(p for p in paragraphs if p)[:limit]


def price_amount(value: object) -> str | None:
    """A decimal amount string with 2 decimals from a float or text price; None when unknown.

    >>> price_amount(19.9), price_amount("$1,299.00"), price_amount("from 9.99"), price_amount(None)
    ('19.90', '1299.00', None, None)
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    text = str(value).strip().removeprefix("$").replace(",", "")
    try:
        amount = Decimal(text).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None
    rendered = format(amount, "f")
    return rendered if amount.is_finite() and _AMOUNT.match(rendered) else None


def _months(number: str, unit: str) -> int:
    return round(float(number) * (1 if unit.lower().startswith("mo") else 12))


def age_range_months(text: object) -> tuple[int | None, int | None]:
    """Parse Amazon's "Manufacturer recommended age" into months; (None, None) when unrecognised.

    >>> age_range_months("3 years and up"), age_range_months("18 months - 5 years"), age_range_months("8 - 14 years")
    ((36, None), (18, 60), (96, 168))
    """
    if not isinstance(text, str):
        return None, None
    found = _AGE_RANGE.match(text.strip())
    if found:
        low, low_unit, high, high_unit = found.groups()
        low_months, high_months = _months(low, low_unit or high_unit), _months(high, high_unit)
        return (low_months, high_months) if low_months <= high_months else (None, None)
    found = _AGE_MIN.match(text.strip())
    return (_months(found.group(1), found.group(2)), None) if found else (None, None)


def http_uri(value: object) -> str | None:
    """The value if it is an http(s) URL without whitespace of at most 2048 characters, else None."""
    if isinstance(value, str) and re.match(r"^https?://[^\s/?#]+\S*$", value) and len(value) <= 2048:
        return value
    return None


def best_image(image: object) -> str | None:
    """URL of the largest size of one Amazon image record (hi_res, then large, then thumb)."""
    if not isinstance(image, Mapping):
        return None
    return next((uri for size in _IMAGE_SIZES if (uri := http_uri(image.get(size)))), None)


def attributes_of(details: object) -> dict[str, AttributeValue]:
    """Amazon ``details`` as listing attributes: scalars kept, lists joined, anything else as JSON."""
    if not isinstance(details, Mapping):
        return {}
    attributes: dict[str, AttributeValue] = {}
    for name, value in details.items():
        key = clean_text(name, MAX_ATTRIBUTE_NAME)
        if not key or value is None:
            continue
        if isinstance(value, str):
            attributes[key] = clean_text(value, 1000)
        elif isinstance(value, bool | int | float):
            attributes[key] = value
        elif isinstance(value, list):
            attributes[key] = ", ".join(clean_text(str(item), 1000) for item in value)
        else:
            attributes[key] = json.dumps(value, ensure_ascii=False)[:1000]
    return attributes


def review_id_of(record: Mapping[str, Any]) -> str:
    """Stable id of a review, which the dataset lacks: a hash of reviewer, item and time."""
    identity = f"{record.get('user_id')}|{record.get('asin')}|{record.get('timestamp')}"
    return "amzn-" + hashlib.sha256(identity.encode("utf-8")).hexdigest()[:24]
