"""Contrastive losses on hand-made unit vectors."""

import math

import pytest
import torch

from stream.train.loss import LossWeights, batch_hard_triplet, fusion_loss, info_nce

E1, E2, E3 = torch.eye(3)


def test_info_nce_is_low_for_matching_pairs_and_high_for_swapped_ones() -> None:
    anchors = torch.stack([E1, E2])
    scale = torch.tensor(math.log(10.0))

    matched = info_nce(anchors, anchors, scale)
    swapped = info_nce(anchors, anchors.flip(0), scale)

    # logits 10 on the diagonal and 0 elsewhere: -log(e^10 / (e^10 + 1)) in both directions.
    assert float(matched) == pytest.approx(math.log1p(math.exp(-10.0)), abs=1e-6)
    assert float(swapped) == pytest.approx(10.0 + math.log1p(math.exp(-10.0)), abs=1e-5)


def test_info_nce_is_symmetric() -> None:
    first = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.2, 0.0], [0.1, 1.0, 0.3], [0.0, 0.4, 1.0]]), dim=1
    )
    second = torch.nn.functional.normalize(
        torch.tensor([[0.9, 0.0, 0.3], [0.0, 1.0, 0.0], [0.5, 0.0, 1.0]]), dim=1
    )
    scale = torch.tensor(1.0)

    assert float(info_nce(first, second, scale)) == pytest.approx(float(info_nce(second, first, scale)))


def test_batch_hard_triplet_uses_the_hardest_positive_and_negative() -> None:
    close = torch.nn.functional.normalize(E1 + 0.1 * E2, dim=0)
    embeddings = torch.stack([E1, close, E2, E3])
    labels = torch.tensor([0, 0, 1, 2])

    loss = batch_hard_triplet(embeddings, labels, margin=0.5)

    # anchors 0 and 1: positive similarity cos(E1, close) = 0.995, hardest negative E2 gives 0 or 0.0995.
    expected_1 = max(0.0, 0.5 + float(close @ E2) - float(close @ E1))
    expected_0 = max(0.0, 0.5 + 0.0 - float(close @ E1))
    assert float(loss) == pytest.approx((expected_0 + expected_1) / 2, abs=1e-6)


def test_batch_hard_triplet_penalises_a_negative_closer_than_the_positive() -> None:
    embeddings = torch.stack([E1, E2, E1])
    labels = torch.tensor([0, 0, 1])

    assert float(batch_hard_triplet(embeddings, labels, margin=0.2)) > 0.2


def test_batch_hard_triplet_without_any_positive_is_zero() -> None:
    assert float(batch_hard_triplet(torch.stack([E1, E2]), torch.tensor([0, 1]), margin=0.2)) == 0.0


def test_fusion_loss_adds_the_weighted_terms() -> None:
    first, second = torch.stack([E1, E2]), torch.stack([E1, E2])
    scale = torch.tensor(0.0)
    weights = LossWeights(triplet=0.5, margin=0.2, query=2.0)

    total, parts = fusion_loss(first, second, torch.stack([E2, E1]), scale, weights)

    assert set(parts) == {"infonce", "triplet", "query"}
    assert float(total) == pytest.approx(
        parts["infonce"] + 0.5 * parts["triplet"] + 2.0 * parts["query"], rel=1e-6
    )
    assert parts["query"] > parts["infonce"]


def test_fusion_loss_backpropagates_to_the_logit_scale() -> None:
    scale = torch.tensor(1.0, requires_grad=True)
    first = torch.nn.functional.normalize(
        torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), dim=1
    )

    total, _ = fusion_loss(first, first.roll(1, 0), None, scale, LossWeights())
    total.backward()  # type: ignore[no-untyped-call]

    assert scale.grad is not None and float(scale.grad) != 0.0
