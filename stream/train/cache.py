"""On-disk cache of frozen-encoder features of a catalog: one ``.npz`` of arrays plus a JSON index."""

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from stream.errors import CatalogError
from stream.model.fusion import ListingBatch

FEATURES_FORMAT = 1  # bump when the arrays below change meaning, so old caches are re-extracted
Floats = NDArray[np.float32]
Strings = NDArray[np.str_]
OPTIONAL_ARRAYS = frozenset({"weak_keys"})  # arrays a cache written before them may lack


def _no_keys() -> Strings:
    return np.array([], dtype=np.str_)


@dataclass(frozen=True)
class FeatureSet:
    """Encoder outputs of N listings in ``listings.jsonl`` order; zeros where a modality is missing."""

    listing_ids: Strings  # [N]
    families: Strings  # [N] product (family) id: equal ids are the same product
    categories: Strings  # [N] the listing's most specific category (for hard-negative batches)
    locales: Strings  # [N] BCP 47 locale, "" when unknown
    text: Floats  # [N, 384] MiniLM vector of the listing text
    text_multilingual: Floats  # [N, 512] USE vector of the listing text
    photos: Floats  # [N, 4, 1280] per-photo image features, producer order
    photo_mask: Floats  # [N, 4]
    image: Floats  # [N, 1280] L2-normalised mean of the photos
    frames: Floats  # [N, 8, 1280] per-frame image features of the first video
    frame_mask: Floats  # [N, 8]
    reviews: Floats  # [N, 512] weighted mean of review vectors
    modality_mask: Floats  # [N, 4] presence of (text, image, video, reviews)
    query_text: Floats  # [N, 384] MiniLM vector of the query written from the listing's title
    query_text_multilingual: Floats  # [N, 512] USE vector of that query
    weak_keys: Strings = field(default_factory=_no_keys)  # [N] weak product key (weak_labels), "" when none

    def __post_init__(self) -> None:
        if not len(self.weak_keys):  # not given, or read from a cache older than weak keys
            object.__setattr__(self, "weak_keys", np.full(len(self.listing_ids), "", dtype=np.str_))

    def __len__(self) -> int:
        return len(self.listing_ids)

    def subset(self, rows: NDArray[np.int64]) -> "FeatureSet":
        """The listings at ``rows``, in that order."""
        return FeatureSet(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def listing_batch(self) -> ListingBatch:
        """Every listing as one batch of float32 tensors."""
        return ListingBatch(*(_tensor(getattr(self, name)) for name in ListingBatch._fields))

    def query_batch(self) -> ListingBatch:
        """Each listing's title query as a text-only batch (the way a search text is fused)."""
        batch = self.listing_batch()
        mask = torch.zeros_like(batch.modality_mask)
        mask[:, 0] = 1.0
        return ListingBatch(
            _tensor(self.query_text),
            _tensor(self.query_text_multilingual),
            torch.zeros_like(batch.image),
            torch.zeros_like(batch.frames),
            torch.zeros_like(batch.frame_mask),
            torch.zeros_like(batch.reviews),
            mask,
        )


def _tensor(array: NDArray[np.floating[Any]]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def index_path(npz_path: Path) -> Path:
    """The JSON index written beside a feature file."""
    return npz_path.with_suffix(".json")


def save(features: FeatureSet, npz_path: Path, index: dict[str, Any]) -> None:
    """Write the arrays (compressed) and the JSON index (``index`` plus the format and counts)."""
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f.name: getattr(features, f.name) for f in fields(features)}
    np.savez_compressed(npz_path, **arrays)
    record = {**index, "format": FEATURES_FORMAT, "listings": len(features)}
    index_path(npz_path).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_index(npz_path: Path) -> dict[str, Any] | None:
    """The JSON index of a feature file, or None when missing, unreadable or of another format."""
    try:
        index: dict[str, Any] = json.loads(index_path(npz_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return index if index.get("format") == FEATURES_FORMAT else None


def load(npz_path: Path) -> FeatureSet:
    """Read a feature file written by :func:`save`; a file without ``weak_keys`` gives "" for every listing.

    Raises:
        CatalogError: the file is missing or lacks an array.
    """
    try:
        with np.load(npz_path) as data:
            names = [
                f.name for f in fields(FeatureSet) if f.name in data.files or f.name not in OPTIONAL_ARRAYS
            ]
            return FeatureSet(**{name: data[name] for name in names})
    except (OSError, KeyError, ValueError) as exc:
        raise CatalogError(
            f"cannot read cached features {npz_path}: {exc}; extract them again with `toyfuse features`"
        ) from exc
