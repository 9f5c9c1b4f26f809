"""Tests for stream/store/vector_sets.py: how a set's VINFO reply differs from what the layout builds."""

from stream.contracts.shapes import INDEX
from stream.store.vector_sets import built_otherwise

AS_BUILT = {b"quant-type": b"int8", b"hnsw-m": INDEX.search.build_m, b"vector-dim": 256, b"size": 3}


def test_a_set_built_as_the_layout_builds_differs_in_nothing() -> None:
    assert INDEX.search.quantization == "Q8" and INDEX.vectors[INDEX.search.vector].dims == 256
    assert built_otherwise(INDEX, AS_BUILT) == []


def test_each_build_option_that_differs_is_named_with_both_values() -> None:
    info = {**AS_BUILT, b"quant-type": b"f32", b"hnsw-m": 8, b"vector-dim": 128}

    assert built_otherwise(INDEX, info) == [
        "quantization NOQUANT, not Q8",
        f"build_m 8, not {INDEX.search.build_m}",
        "dims 128, not 256",
    ]


def test_a_quantisation_redis_may_add_later_is_named_as_redis_names_it() -> None:
    assert built_otherwise(INDEX, {**AS_BUILT, b"quant-type": b"q4"}) == ["quantization q4, not Q8"]
