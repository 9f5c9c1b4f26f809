"""The benchmark's checks on its plan before it streams anything."""

from dataclasses import replace
from pathlib import Path

import click
import pytest

from stream.bench.command import BenchPlan, check_media_listings
from stream.catalog.generate import CatalogSummary

CATALOG = CatalogSummary(
    Path("catalog"), families=60, listings=200, reviews=500, images=335, videos=140, generated=False
)


def test_the_default_media_listings_fit_the_sample_catalog() -> None:
    check_media_listings(BenchPlan(), CATALOG)


@pytest.mark.parametrize("scenario", ["multimodal", "updates"])
def test_more_media_listings_than_the_catalog_has_are_refused_since_the_encoder_cache_would_serve_repeats(
    scenario: str,
) -> None:
    plan = replace(BenchPlan(), scenarios=(scenario,), media_listings=201)
    with pytest.raises(click.BadParameter, match="more than the sample catalog's 200 listings"):
        check_media_listings(plan, CATALOG)


def test_media_listings_are_not_checked_when_no_scenario_uses_them() -> None:
    check_media_listings(
        replace(BenchPlan(), scenarios=("text", "freshness"), media_listings=10_000), CATALOG
    )
