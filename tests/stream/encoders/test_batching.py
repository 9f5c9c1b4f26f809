"""Texts run in groups of similar length: every vector back in its place, the same as one padded batch."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stream.encoders import accuracy
from stream.encoders.batching import embed_in_length_groups, length_groups, padded
from stream.encoders.export import TEXT_ENCODER, onnx_file
from stream.encoders.networks import text_tokenizer
from stream.encoders.sessions import onnx_runner
from tests.stream.encoders.conftest import Material, embed


def test_groups_cover_every_item_once_shortest_first() -> None:
    groups = length_groups([7, 3, 3, 9, 1], 2)
    assert [group.tolist() for group in groups] == [[4, 1], [2, 0], [3]]


def test_a_group_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1, got 0"):
        length_groups([1, 2], 0)


def test_padding_goes_right_and_is_masked() -> None:
    arrays = padded([[5, 6, 7], [8]], pad_id=0)
    assert arrays["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert arrays["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_vectors_come_back_in_input_order_from_groups_of_similar_length() -> None:
    widths: list[int] = []

    def runner(inputs: dict[str, Any]) -> np.ndarray:
        widths.append(inputs["input_ids"].shape[1])
        return inputs["attention_mask"].sum(axis=1, keepdims=True).astype(np.float32)

    token_ids = [[1] * length for length in (4, 1, 6, 2, 5)]
    vectors = embed_in_length_groups(runner, token_ids, pad_id=0, size=2)
    assert vectors[:, 0].tolist() == [4, 1, 6, 2, 5]
    assert widths == [2, 5, 6]  # (1, 2), (4, 5), (6): each group padded only to its own longest


def test_grouped_vectors_equal_one_padded_batch_on_real_texts(material: Material, onnx_cache: Path) -> None:
    runner = onnx_runner(onnx_file(onnx_cache, TEXT_ENCODER, "fp32"), 0)
    tokenizer = text_tokenizer()
    texts = material.texts[:32]
    token_ids = tokenizer(texts, truncation=True, max_length=256)["input_ids"]
    grouped = embed_in_length_groups(runner, token_ids, tokenizer.pad_token_id, 4)
    assert accuracy.cosines(embed(runner, texts), grouped).min() >= 0.9999
