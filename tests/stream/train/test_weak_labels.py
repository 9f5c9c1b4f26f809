"""Weak product keys: GTIN check digits and normalisation, brand + model number, parent ASIN."""

from datetime import UTC, datetime

import pytest

from stream.contracts.events import AttributeValue, ListingEvent
from stream.train.weak_labels import attribute_name, gtin14, gtin_check_digit, weak_key


def _listing(brand: str | None = "Blokko", **attributes: AttributeValue) -> ListingEvent:
    return ListingEvent(
        "e", "listing.upserted", "l", 1, datetime(2026, 1, 1, tzinfo=UTC), brand=brand, attributes=attributes
    )


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("96385074", "00000096385074"),  # GTIN-8 (EAN-8)
        ("036000291452", "00036000291452"),  # GTIN-12 (UPC-A)
        ("0036000291452", "00036000291452"),  # the same product as an EAN-13
        ("4006381333931", "04006381333931"),  # GTIN-13 (EAN-13)
        ("10614141000415", "10614141000415"),  # GTIN-14
        ("4006-3813 3393-1", "04006381333931"),  # spaces and hyphens are ignored
        (36000291452, "00036000291452"),  # an integer attribute lost its leading zero
    ],
)
def test_gtins_of_every_length_become_gtin_14(written: AttributeValue, expected: str) -> None:
    assert gtin14(written) == expected


@pytest.mark.parametrize(
    "written",
    [
        "4006381333932",  # wrong check digit
        "036000291453",
        "12345",  # no GTIN length
        "400638133393100",
        "00000000",  # placeholder
        "４００６３８１３３３９３１",  # full-width digits
        "40063813339x1",
        True,
        4006381333931.0,
        "",
    ],
)
def test_non_gtins_are_refused(written: AttributeValue) -> None:
    assert gtin14(written) is None


def test_check_digit_weights_alternate_from_the_right() -> None:
    assert [gtin_check_digit(body) for body in ("400638133393", "03600029145", "9638507")] == [1, 2, 4]


def test_attribute_names_are_compared_loosely() -> None:
    assert attribute_name("Item Model Number") == "itemmodelnumber"
    assert attribute_name("parent_asin") == attribute_name("Parent ASIN") == "parentasin"


def test_a_gtin_wins_over_brand_and_model_and_over_parent_asin() -> None:
    listing = _listing(UPC="036000291452", model_number="X-1", parent_asin="B00ABC")

    assert weak_key(listing) == "gtin:00036000291452"


def test_upc_and_ean_of_one_product_give_one_key() -> None:
    assert weak_key(_listing(upc="036000291452")) == weak_key(_listing(EAN="0036000291452"))


def test_the_first_valid_gtin_of_a_list_is_used() -> None:
    assert weak_key(_listing(gtin="123, 4006381333931, 036000291452")) == "gtin:04006381333931"


def test_brand_and_model_number_are_casefolded_without_punctuation() -> None:
    keys = {
        weak_key(_listing("BLOKKO", model_number="bk-1020")),
        weak_key(_listing("Blokko", **{"Item model number": "BK 1020"})),
        weak_key(_listing("blokko", 型号="BK1020")),
    }

    assert keys == {"model:blokko|bk1020"}


def test_a_model_number_without_a_brand_is_no_key() -> None:
    assert weak_key(_listing(None, model_number="BK-1020")) == ""
    assert weak_key(_listing("Blokko", model_number=" - ")) == ""


def test_an_invalid_gtin_falls_back_to_brand_and_model() -> None:
    assert weak_key(_listing(EAN="4006381333932", model_number="BK-1020")) == "model:blokko|bk1020"


def test_parent_asin_is_the_last_resort() -> None:
    assert weak_key(_listing(None, parent_asin=" b07xyz1234 ")) == "asin:B07XYZ1234"
    assert weak_key(_listing(None, colour="red")) == ""
