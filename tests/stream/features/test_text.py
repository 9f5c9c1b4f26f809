"""Listing text building."""

from stream.features.text import format_age_range, format_attributes, listing_text


def test_attribute_order_does_not_change_the_text() -> None:
    one = format_attributes({"pieces": 120, "colour": "red", "batteries": False})
    other = format_attributes({"batteries": False, "pieces": 120, "colour": "red"})

    assert one == other == "batteries: no; colour: red; pieces: 120"


def test_age_ranges() -> None:
    assert format_age_range(36, 96) == "ages 36 to 96 months"
    assert format_age_range(None, 24) == "ages up to 24 months"
    assert format_age_range(None, None) == ""


def test_listing_text_puts_title_first_and_skips_missing_parts() -> None:
    text = listing_text(
        title=" Plush Koala ",
        description="Soft grey koala.",
        brand="Cuddle Co",
        categories=["Plush", "Animals"],
        attributes={"height_cm": 30},
        age_min_months=0,
    )

    assert text == (
        "Plush Koala. brand: Cuddle Co. categories: Plush, Animals. height_cm: 30. "
        "ages 0 months and up. Soft grey koala."
    )
    assert listing_text(title="Kite", description="") == "Kite"
