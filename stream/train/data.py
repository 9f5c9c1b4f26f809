"""Training data plumbing: product-level splits, batches of listing pairs, modality dropout and noise, views."""

import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.nn import functional as F

from stream.errors import CatalogError
from stream.model.fusion import ListingBatch

Split = Literal["train", "val", "test"]
LabelMode = Literal["product", "weak", "agreement", "none"]  # what makes two training listings positives
SPLITS: tuple[Split, ...] = ("train", "val", "test")
SPLIT_FRACTIONS = (0.70, 0.15)  # train, val; the rest is test
Rows = NDArray[np.int64]
MODALITY_FIELDS = (("text", "text_multilingual"), ("image",), ("frames", "frame_mask"), ("reviews",))


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


def positive_groups(families: Sequence[str], weak_keys: Sequence[str], labels: LabelMode) -> list[str]:
    """The group of each listing; training pairs come from one group.

    ``product``: the product. ``weak``: the weak key (see ``weak_labels``), the listing alone when it
    has none. ``none``: the listing alone (its two views are the pair).

    >>> positive_groups(["a", "a", "b"], ["k", "", "k"], "weak")
    ['k', 'listing:1', 'k']
    """
    if labels == "product":
        return list(families)
    alone = [f"listing:{row}" for row in range(len(families))]
    return alone if labels == "none" else [key or own for key, own in zip(weak_keys, alone, strict=True)]


class PairBatchSampler:
    """Batches of products, each present as two different listings: yields ``(first, second)`` row arrays.

    Products with a single listing in ``rows`` are skipped (they have no positive), unless ``singletons``:
    then they pair with themselves (``first == second``, for two views of one listing). With
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
        singletons: bool = False,
    ) -> None:
        members: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            members[families[row]].append(int(row))
        self.members = {
            family: listing for family, listing in sorted(members.items()) if len(listing) >= 2 or singletons
        }
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
            groups = [self.members[family] for family in chunk]
            pairs = np.stack([rng.choice(group, size=2, replace=len(group) < 2) for group in groups])
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
    return (keep | (random_pick(present, generator) & emptied.unsqueeze(1))).to(modality_mask.dtype)


def random_pick(present: Tensor, generator: torch.Generator) -> Tensor:
    """One-hot [B, K] of a random ``present`` entry of each row (entry 0 for a row with none)."""
    chance = torch.rand(present.shape, generator=generator).masked_fill(~present, -1.0)
    return F.one_hot(chance.argmax(dim=1), present.shape[1]).bool()


def donor_pools(modality_mask: Tensor, rows: Rows) -> list[Tensor]:
    """For each modality, the sorted rows among ``rows`` that have it: the listings noise is drawn from."""
    rows_tensor = torch.from_numpy(np.sort(rows))
    present = modality_mask[rows_tensor] > 0
    return [rows_tensor[present[:, m]] for m in range(modality_mask.shape[1])]


def draw_donors(
    rows: Rows, modality_mask: Tensor, pools: Sequence[Tensor], rates: Tensor, generator: torch.Generator
) -> Tensor:
    """Choose each present modality with chance ``rates[m]`` and a random other listing of ``pools[m]`` for it.

    Args:
        rows: [B] the listings of a view (rows of the tensors the pools index).
        modality_mask: [B, M] their presence; absent modalities are never chosen.
        pools: per modality, sorted rows that have it (see :func:`donor_pools`).
        rates: [M] chance of replacing each modality.
        generator: the random source (seeded by the caller).

    Returns:
        [B, M] int64: the donor row of each listing's modality, -1 where it keeps its own vector. A
        listing is never its own donor; a modality with no other listing in its pool is kept.
    """
    chosen = (modality_mask > 0) & (torch.rand(modality_mask.shape, generator=generator) < rates)
    own = torch.from_numpy(rows)
    donors = torch.full(modality_mask.shape, -1, dtype=torch.int64)
    for m, pool in enumerate(pools):
        position = torch.searchsorted(pool, own).clamp_max(max(len(pool) - 1, 0))
        member = (pool[position] == own) if len(pool) else torch.zeros(len(own), dtype=torch.bool)
        others = len(pool) - member.long()
        pick = (
            (torch.rand(len(own), generator=generator) * others).long().clamp_max((others - 1).clamp_min(0))
        )
        pick = pick + (member & (pick >= position)).long()
        usable = chosen[:, m] & (others > 0)
        donors[usable, m] = pool[pick[usable]]
    return donors


def swap_modalities(batch: ListingBatch, donors: Tensor, source: ListingBatch) -> ListingBatch:
    """The batch with each modality marked in ``donors`` replaced by the donor row's of ``source``.

    The presence mask is left as it is: the listing still shows the modality, only its content is another
    listing's (a realistic but uninformative input).
    """
    changes = {}
    for m, names in enumerate(MODALITY_FIELDS):
        swapped = donors[:, m] >= 0
        for name in names:
            tensor = getattr(batch, name).clone()
            tensor[swapped] = getattr(source, name)[donors[swapped, m]]
            changes[name] = tensor
    return batch._replace(**changes)


def split_modalities(modality_mask: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Share each row's present modalities between two views at random.

    A row with two or more modalities gets two disjoint, non-empty subsets (the views must agree across
    modalities); a row with one shows it in both views.

    Returns:
        the [B, M] masks of the first and the second view.
    """
    present = modality_mask > 0
    first = present & (torch.rand(modality_mask.shape, generator=generator) < 0.5)
    second = present & ~first
    several = (present.sum(dim=1, keepdim=True) >= 2).expand_as(present)
    pick = random_pick(present, generator) & several
    to_first = pick & ~first.any(dim=1, keepdim=True)
    to_second = pick & ~second.any(dim=1, keepdim=True)
    first, second = (first | to_first) & ~to_second, (second | to_second) & ~to_first
    single = present & ~several
    return (first | single).to(modality_mask.dtype), (second | single).to(modality_mask.dtype)


def shared_text_views(modality_mask: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Two views for block fusion: both keep the text; each keeps every other present modality by a coin.

    Block fusion puts each modality in its own block, so views must share one to have any similarity.

    Returns:
        the [B, M] masks of the first and the second view.
    """
    present = modality_mask > 0
    text = torch.zeros_like(present)
    text[:, 0] = present[:, 0]
    first, second = (
        text | (present & (torch.rand(modality_mask.shape, generator=generator) < 0.5)) for _ in range(2)
    )
    return first.to(modality_mask.dtype), second.to(modality_mask.dtype)


def pool_photo_subset(
    photos: Tensor, photo_mask: Tensor, image: Tensor, keep: float, generator: torch.Generator
) -> Tensor:
    """Image vectors pooled (L2-normalised mean) from a random subset of each listing's photos.

    Each photo is kept with chance ``keep``, at least one per listing; a listing without per-photo
    vectors keeps its ``image``.
    """
    real = photo_mask > 0
    kept = real & (torch.rand(photo_mask.shape, generator=generator) < keep)
    kept = kept | (random_pick(real, generator) & ~kept.any(dim=1, keepdim=True))
    pooled = F.normalize((photos * kept.unsqueeze(-1)).sum(dim=1), dim=-1)
    return torch.where(real.any(dim=1, keepdim=True), pooled, image)


def jitter(vectors: Tensor, noise: float, dim_dropout: float, generator: torch.Generator) -> Tensor:
    """Gaussian noise of ``noise`` times each vector's RMS, then inverted dropout of vector dims (zeros stay 0)."""
    rms = vectors.pow(2).mean(dim=-1, keepdim=True).sqrt()
    noisy = vectors + noise * rms * torch.randn(vectors.shape, generator=generator)
    kept = torch.rand(vectors.shape, generator=generator) >= dim_dropout
    return noisy * kept / (1.0 - dim_dropout)


@dataclass(frozen=True)
class ViewAugment:
    """Feature-level augmentation of the two views of one listing (label-free training)."""

    noise: float = 0.1  # gaussian noise on every vector, relative to the vector's RMS
    dim_dropout: float = 0.1  # chance that each vector dimension is zeroed
    photo_keep: float = 0.5  # chance that each photo is pooled into the view's image (one at least)


def listing_view(
    batch: ListingBatch,
    modality_mask: Tensor,
    photos: Tensor,
    photo_mask: Tensor,
    augment: ViewAugment,
    generator: torch.Generator,
) -> ListingBatch:
    """One augmented view of listings: ``modality_mask`` shown, a photo subset pooled, vectors jittered."""
    image = pool_photo_subset(photos, photo_mask, batch.image, augment.photo_keep, generator)
    shaken = {
        name: jitter(getattr(batch, name), augment.noise, augment.dim_dropout, generator)
        for name in ("text", "text_multilingual", "frames", "reviews")
    }
    image = jitter(image, augment.noise, augment.dim_dropout, generator)
    return batch._replace(image=image, modality_mask=modality_mask, **shaken)
