"""Pure Amazon field converters."""

import pytest

from stream.importers.amazon_fields import (
    age_range_months,
    attributes_of,
    best_image,
    clean_text,
    join_paragraphs,
    price_amount,
    review_id_of,
)


def test_clean_text_decodes_entities_breaks_and_cuts() -> None:
    assert clean_text("Fun &amp; safe<BR>Ages 3&#43; &quot;ok&quot;", 100) == 'Fun & safe\nAges 3+ "ok"'
    assert clean_text("  abcdef  ", 3) == "abc"
    assert clean_text(None, 10) == clean_text(42, 10) == ""


def test_join_paragraphs_skips_blanks_and_non_lists() -> None:
    assert join_paragraphs(["One.", "", " Two. "], 100) == "One.\nTwo."
    assert join_paragraphs(None, 100) == join_paragraphs("text", 100) == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [(34.99, "34.99"), (5, "5.00"), (0.005, "0.01"), ("$1,299.00", "1299.00"), ("12.5", "12.50"), (None, None),
     ("None", None), ("\u2014", None), ("from $8.99", None), (-3.0, None), (float("nan"), None),
     (float("inf"), None), (1e15, None), (True, None)],
)  # fmt: skip
def test_price_amount(value: object, expected: str | None) -> None:
    assert price_amount(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3 years and up", (36, None)), ("36 months and up", (36, None)), ("18 months - 5 years", (18, 60)),
     ("8 - 14 years", (96, 168)), ("1.5 years and up", (18, None)), ("6 to 12 years", (72, 144)),
     ("14 years - 8 years", (None, None)), ("Teen", (None, None)), (None, (None, None))],
)  # fmt: skip
def test_age_range_months(text: object, expected: tuple[int | None, int | None]) -> None:
    assert age_range_months(text) == expected


def test_best_image_prefers_the_largest_http_url() -> None:
    image = {"thumb": "https://x/t.jpg", "large": "https://x/l.jpg", "hi_res": None, "variant": "MAIN"}

    assert best_image(image) == "https://x/l.jpg"
    assert (
        best_image({"thumb": "https://x/t.jpg", "large": "ftp://x/l.jpg", "hi_res": "not a url"})
        == "https://x/t.jpg"
    )
    assert best_image({"thumb": None}) is None
    assert best_image("https://x/t.jpg") is None


def test_attributes_keep_scalars_join_lists_and_drop_nulls() -> None:
    details = {"Color": ["Red", "Blue"], "Pieces": 120, "Batteries": False, "Rank": {"Toys": 3}, "Empty": None,
               "x" * 101: "too long a name is cut", "Note": "A &amp; B"}  # fmt: skip

    attributes = attributes_of(details)

    assert (
        attributes["Color"] == "Red, Blue"
        and attributes["Pieces"] == 120
        and attributes["Batteries"] is False
    )
    assert attributes["Rank"] == '{"Toys": 3}' and "Empty" not in attributes and attributes["Note"] == "A & B"
    assert "x" * 100 in attributes
    assert attributes_of(None) == {}


def test_review_id_is_stable_and_distinguishes_reviews() -> None:
    review = {"user_id": "AE1", "asin": "B01", "timestamp": 1}

    assert review_id_of(review) == review_id_of(dict(review)) != review_id_of({**review, "timestamp": 2})
    assert review_id_of(review).startswith("amzn-") and len(review_id_of(review)) == 29
