"""The int8 accuracy check: cosines, Recall@1, the verdict; and the served precision on real listing texts."""

from typing import get_args

import numpy as np
import pytest

from stream.encoders import accuracy
from stream.encoders.exceptions import AccuracyCheckFailed
from stream.encoders.export import Precision
from tests.stream.encoders.conftest import served_parameters


def test_cosines_ignore_length_and_keep_zero_rows_at_zero() -> None:
    reference = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]], dtype=np.float32)
    candidate = np.array([[3.0, 0.0], [2.0, 2.0], [1.0, 0.0]], dtype=np.float32)
    assert accuracy.cosines(reference, candidate) == pytest.approx([1.0, np.sqrt(0.5), 0.0])


def test_recall_counts_only_items_whose_label_recurs() -> None:
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.8, 0.3]], dtype=np.float32)
    # Items 0 and 1 are each other's nearest: both hit; the lone b and c ask nothing.
    assert accuracy.recall_at_1(vectors, ["a", "a", "c", "b"]) == 1.0
    # Item 1 (b) is nearest to item 0 (a), a miss; item 3 (b) is nearest to item 1, a hit.
    assert accuracy.recall_at_1(vectors, ["a", "b", "c", "b"]) == 0.5


def test_recall_refuses_labels_that_never_recur() -> None:
    with pytest.raises(ValueError, match="two items"):
        accuracy.recall_at_1(np.eye(2, dtype=np.float32), ["a", "b"])


def test_a_single_stray_item_fails_the_check_and_is_named() -> None:
    reference = np.eye(4, dtype=np.float32)[[0, 0, 1, 1]]
    candidate = reference.copy()
    candidate[3] = [0.0, 1.0, 0.3, 0.0]  # cosine 0.958, still nearest to its twin
    report = accuracy.compare(reference, candidate, ["a", "a", "b", "b"])
    assert report.worst_item == 3 and report.recall_change == 0.0
    with pytest.raises(AccuracyCheckFailed, match="item 3 has cosine 0.9578"):
        accuracy.check(report, "int8 text_encoder")


def test_a_recall_change_fails_the_check_although_every_cosine_passes() -> None:
    report = accuracy.AccuracyReport(0.995, 0.998, 0, reference_recall=0.90, candidate_recall=0.88)
    with pytest.raises(AccuracyCheckFailed, match="Recall@1 0.8800 vs 0.9000"):
        accuracy.check(report, "int8 text_encoder")
    close = accuracy.AccuracyReport(0.995, 0.998, 0, reference_recall=0.90, candidate_recall=0.895)
    assert accuracy.check(close, "int8 text_encoder") is close


def test_a_candidate_that_finds_more_is_not_refused_for_it() -> None:
    better = accuracy.AccuracyReport(0.995, 0.998, 0, reference_recall=0.5667, candidate_recall=0.5833)
    assert accuracy.check(better, "int8 text_encoder") is better


def test_the_served_precision_is_one_the_text_encoder_offers() -> None:
    assert served_parameters("text_encoder")["precision"] in get_args(Precision)
