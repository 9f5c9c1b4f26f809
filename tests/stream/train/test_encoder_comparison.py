"""Comparison of text encoders by query language, with stand-in embedders."""

import json
from pathlib import Path

import numpy as np
import pytest

from stream.errors import CatalogError
from stream.train.encoder_comparison import (
    ComparisonRow,
    compare_text_encoders,
    compare_vectors,
    format_table,
)
from tests.conftest import ListingEventFactory

# Listings: two products, each in English and Chinese.
PRODUCTS = ["kite", "kite", "bear", "bear"]
LANGUAGES = ["en", "zh", "en", "zh"]


def rows_of(rows: list[ComparisonRow], encoder: str, language: str, candidates: str) -> ComparisonRow:
    return next(
        r for r in rows if (r.encoder, r.query_language, r.candidates) == (encoder, language, candidates)
    )


def test_a_cross_lingual_encoder_beats_one_that_groups_by_language() -> None:
    by_product = np.array([[1, 0, 0.1], [1, 0, -0.1], [0, 1, 0.1], [0, 1, -0.1]], dtype=np.float32)
    by_language = np.array([[1, 0, 0.1], [0, 1, 0.1], [1, 0, -0.1], [0, 1, -0.1]], dtype=np.float32)

    rows = compare_vectors({"cross": by_product, "mono": by_language}, PRODUCTS, LANGUAGES)

    assert [(r.query_language, r.candidates) for r in rows[:4]] == [
        ("zh", "all"), ("zh", "other language"), ("en", "all"), ("en", "other language")
    ]  # fmt: skip
    assert rows_of(rows, "cross", "zh", "all").mrr == 1.0
    assert rows_of(rows, "mono", "zh", "all").mrr == 0.5, "the other Chinese listing ranks first"
    assert rows_of(rows, "mono", "zh", "other language").mrr == 1.0, (
        "among English listings it finds the product"
    )
    assert rows_of(rows, "mono", "en", "all").queries == 2


def write_catalog(folder: Path, factory: ListingEventFactory) -> None:
    events = [
        factory(listing_id="l1", title="Blue diamond kite", description="Flies in light wind."),
        factory(listing_id="l2", title="蓝色菱形风筝", description="微风也能飞。", locale="zh-CN"),
        factory(listing_id="l3", title="Brown teddy bear", description="Soft plush."),
        factory(listing_id="l4", title="棕色泰迪熊", description="柔软的毛绒玩具。", locale="zh-CN"),
    ]
    folder.mkdir()
    (folder / "listings.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    products = {"l1": "kite", "l2": "kite", "l3": "bear", "l4": "bear"}
    (folder / "products.json").write_text(json.dumps(products), encoding="utf-8")


def test_compare_text_encoders_embeds_each_listing_text(
    tmp_path: Path, schemas_dir: Path, listing_event_factory: ListingEventFactory
) -> None:
    write_catalog(tmp_path / "catalog", listing_event_factory)
    seen: list[list[str]] = []

    def oracle(texts: list[str]) -> np.ndarray:
        seen.append(texts)
        return np.array(
            [[1.0, 0.0] if ("kite" in t or "风筝" in t) else [0.0, 1.0] for t in texts], np.float32
        )

    rows = compare_text_encoders(tmp_path / "catalog", schemas_dir, {"oracle": oracle})

    assert len(seen) == 1 and seen[0][0].startswith("Blue diamond kite")
    assert {(r.query_language, r.candidates, r.recall_at_5, r.mrr) for r in rows} == {
        ("zh", "all", 1.0, 1.0), ("zh", "other language", 1.0, 1.0),
        ("en", "all", 1.0, 1.0), ("en", "other language", 1.0, 1.0),
    }  # fmt: skip
    assert format_table(rows).splitlines()[2] == "| oracle | zh | all | 1.000 | 1.000 | 2 |"


def test_missing_catalog_is_reported(tmp_path: Path, schemas_dir: Path) -> None:
    with pytest.raises(CatalogError, match="generate it first"):
        compare_text_encoders(tmp_path, schemas_dir, {})
