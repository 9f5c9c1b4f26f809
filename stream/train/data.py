"""Training data plumbing: product-level splits, batches of listing pairs, modality dropout."""

import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from stream.errors import CatalogError
from stream.model.fusion import ListingBatch

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
SPLIT_FRACTIONS = (0.70, 0.15)  # train, val; the rest is test
Rows = NDArray[np.int64]


def split_families(families: Sequence[str], seed: int) -> dict[str, Split]:
    """Assign each product to one split (70/15/15), so no product is seen in two splits.

    The assignment depends only on the set of family ids and ``seed``.

    Raises:
        CatalogError: fewer than 3 products (each split needs one).
    """
    unique = sorted(set(families))
    if len(unique) < len(SPLITS):
        raise CatalogError(
            f"{len(unique)} products cannot fill train/val/test splits; a catalog needs at least 3"
        )
    order = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    train = max(1, round(SPLIT_FRACTIONS[0] * len(unique)))
    val = max(1, min(round(SPLIT_FRACTIONS[1] * len(unique)), len(unique) - train - 1))
    return {
        family: "train" if i < train else "val" if i < train + val else "test"
        for i, family in enumerate(order)
    }


def split_rows(families: Sequence[str], seed: int) -> dict[Split, Rows]:
    """Row indices of each split's listings, in row order."""
    split_of = split_families(families, seed)
    labels = np.array([split_of[family] for family in families])
    return {split: np.flatnonzero(labels == split).astype(np.int64) for split in SPLITS}


def family_labels(families: Sequence[str]) -> NDArray[np.int64]:
    """Integer product label of each listing (equal labels = same product)."""
    index: dict[str, int] = {}
    return np.array([index.setdefault(family, len(index)) for family in families], dtype=np.int64)


class PairBatchSampler:
    """Batches of products, each present as two different listings: yields ``(first, second)`` row arrays.

    Products with a single listing in ``rows`` are skipped (they have no positive). With
    ``group_by_category`` products of one category share batches, so in-batch negatives are hard.
    """

    def __init__(
        self,
        families: Sequence[str],
        categories: Sequence[str],
        rows: Rows,
        batch_products: int,
        seed: int,
        group_by_category: bool = False,
    ) -> None:
        members: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            members[families[row]].append(int(row))
        self.members = {family: listing for family, listing in sorted(members.items()) if len(listing) >= 2}
        self.category = {
            family: Counter(categories[row] for row in listing).most_common(1)[0][0]
            for family, listing in self.members.items()
        }
        self.batch_products = batch_products
        self.seed = seed
        self.group_by_category = group_by_category

    def __len__(self) -> int:
        return math.ceil(len(self.members) / self.batch_products)

    def _order(self, rng: np.random.Generator) -> list[str]:
        families = list(self.members)
        families = [families[i] for i in rng.permutation(len(families))]
        if not self.group_by_category:
            return families
        categories = sorted(set(self.category.values()))
        rank = dict(zip(categories, rng.permutation(len(categories)).tolist(), strict=True))
        return sorted(families, key=lambda family: rank[self.category[family]])

    def epoch(self, epoch: int) -> Iterator[tuple[Rows, Rows]]:
        """The batches of one epoch; the same ``(seed, epoch)`` always gives the same batches."""
        rng = np.random.default_rng([self.seed, epoch])
        order = self._order(rng)
        for start in range(0, len(order), self.batch_products):
            chunk = order[start : start + self.batch_products]
            pairs = np.stack([rng.choice(self.members[family], size=2, replace=False) for family in chunk])
            yield pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)


def take(batch: ListingBatch, rows: Rows) -> ListingBatch:
    """The listings at ``rows`` of a batch."""
    index = torch.from_numpy(rows)
    return ListingBatch(*(tensor[index] for tensor in batch))


def drop_modalities(modality_mask: Tensor, rate: float, generator: torch.Generator) -> Tensor:
    """Hide each present modality with chance ``rate``; a row always keeps at least one of its modalities.

    Args:
        modality_mask: [B, M] presence (1.0/0.0).
        rate: chance of hiding each present modality.
        generator: the random source (seeded by the caller).

    Returns:
        the new [B, M] mask, a subset of the old one.
    """
    present = modality_mask > 0
    keep = present & (torch.rand(modality_mask.shape, generator=generator) >= rate)
    emptied = present.any(dim=1) & ~keep.any(dim=1)
    chance = torch.rand(modality_mask.shape, generator=generator).masked_fill(~present, -1.0)
    rescued = torch.nn.functional.one_hot(chance.argmax(dim=1), modality_mask.shape[1]).bool()
    return (keep | (rescued & emptied.unsqueeze(1))).to(modality_mask.dtype)
