"""Builds the text that the text encoders embed for a listing (pure)."""

from collections.abc import Mapping, Sequence

from stream.contracts.events import AttributeValue, ListingEvent


def format_attributes(attributes: Mapping[str, AttributeValue]) -> str:
    """Render attributes sorted by name, so sellers' different orders give the same text.

    >>> format_attributes({"pieces": 120, "color": "red", "batteries": False})
    'batteries: no; color: red; pieces: 120'
    """

    def render(value: AttributeValue) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    return "; ".join(f"{name.strip()}: {render(value)}" for name, value in sorted(attributes.items()))


def format_age_range(age_min_months: int | None, age_max_months: int | None) -> str:
    """Describe an age range in months ('' when unknown).

    >>> format_age_range(36, None)
    'ages 36 months and up'
    """
    if age_min_months is not None and age_max_months is not None:
        return f"ages {age_min_months} to {age_max_months} months"
    if age_min_months is not None:
        return f"ages {age_min_months} months and up"
    if age_max_months is not None:
        return f"ages up to {age_max_months} months"
    return ""


def listing_text(
    *,
    title: str,
    description: str,
    brand: str | None = None,
    categories: Sequence[str] = (),
    attributes: Mapping[str, AttributeValue] | None = None,
    age_min_months: int | None = None,
    age_max_months: int | None = None,
) -> str:
    """Join a listing's fields into one passage: title first, since the encoder truncates long input.

    Returns:
        The sentences that are present, separated by '. '.
    """
    parts = [
        title.strip(),
        f"brand: {brand.strip()}" if brand else "",
        f"categories: {', '.join(categories)}" if categories else "",
        format_attributes(attributes) if attributes else "",
        format_age_range(age_min_months, age_max_months),
        description.strip(),
    ]
    return ". ".join(part for part in parts if part)


def text_of(event: ListingEvent) -> str:
    """The passage the text encoder embeds for an upsert."""
    return listing_text(
        title=event.title or "",
        description=event.description or "",
        brand=event.brand,
        categories=event.categories,
        attributes=event.attributes,
        age_min_months=event.age_min_months,
        age_max_months=event.age_max_months,
    )
