"""The Redis embedding layout and the shapes models agree on, loaded from schemas/embedding_index.yaml."""

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stream.errors import SettingsError

Quantization = Literal["NOQUANT", "Q8", "BIN"]
MAX_BUILD_EF = 1_000_000  # the largest VADD EF Redis accepts; above it every insert fails "invalid EF"
BUILD_M_RANGE = (4, 4096)  # the VADD M values Redis accepts; outside them every insert fails "invalid M"


class VectorField(BaseModel):
    """One stored vector: its dimension and the model that produces it."""

    model_config = ConfigDict(frozen=True)

    dims: int
    multi: bool = False  # several vectors (e.g. one per photo), stored concatenated in one field
    model: str | None = None
    description: str = ""


class MediaShape(BaseModel):
    """How photos and video frames reach the image encoder."""

    model_config = ConfigDict(frozen=True)

    image_size: int = Field(gt=0)  # uint8 [image_size, image_size, 3]
    max_photos: int = Field(gt=0)  # photos embedded per listing
    frames_per_video: int = Field(gt=0)  # frames sampled from the first video


class Batching(BaseModel):
    """Batch caps shared by the worker and the Triton models."""

    model_config = ConfigDict(frozen=True)

    max_batch: int = Field(
        gt=0
    )  # max_batch_size of every inner model; most listings per listing_embedder call


class EncoderCache(BaseModel):
    """The shared cache of encoder outputs (stream.store.encoder_cache)."""

    model_config = ConfigDict(frozen=True)

    ttl_s: int = Field(gt=0)  # seconds an entry lives after it was last written


class SearchConfig(BaseModel):
    """Which vector the similarity index holds and how it is stored."""

    model_config = ConfigDict(frozen=True)

    vector: str
    quantization: Quantization = "Q8"
    # VADD EF: candidates an insert weighs for its links (Redis's default 200); lower builds faster and, at
    # a million vectors, finds far fewer true neighbours (README, "Speed")
    build_ef: int = Field(200, gt=0, le=MAX_BUILD_EF)
    # VADD M: links per node (Redis's default 16), fixed when a set is created; fewer build faster and use
    # less memory (README, "Speed")
    build_m: int = Field(16, ge=BUILD_M_RANGE[0], le=BUILD_M_RANGE[1])
    attributes: tuple[str, ...] = ()


class IndexSchema(BaseModel):
    """Key names, vector dimensions and search settings of stored embeddings."""

    model_config = ConfigDict(frozen=True)

    version: int
    # no braces: Redis Cluster would take them for a hash tag (stream.store.reviews.listing_tag)
    key_prefix: str = Field(pattern=r"^[^{}\s]+$")
    datatype: Literal["float32"]
    distance_metric: Literal["cosine"]
    vectors: dict[str, VectorField]
    modalities: tuple[str, ...]  # user-facing modalities, in MODALITY_MASK column order
    media: MediaShape
    batching: Batching
    encoder_cache: EncoderCache
    search: SearchConfig

    @model_validator(mode="after")
    def _search_vector_is_stored(self) -> "IndexSchema":
        if self.search.vector not in self.vectors:
            raise ValueError(
                f"search.vector {self.search.vector!r} is not one of vectors {sorted(self.vectors)}"
            )
        unknown = sorted(set(self.modalities) - set(self.vectors))
        if unknown:
            raise ValueError(f"modalities {unknown} have no vector of that name under vectors")
        return self

    @classmethod
    def from_yaml(cls, path: Path) -> "IndexSchema":
        """Load and check the layout file.

        Raises:
            SettingsError: the file is missing or does not describe a valid layout.
        """
        try:
            return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise SettingsError(f"cannot load the embedding layout {path}: {exc}") from exc

    def listing_key(self, listing_id: str) -> str:
        """Hash holding one listing's vectors and metadata."""
        return f"{self.key_prefix}:listing:{listing_id}"

    @property
    def vector_set_key(self) -> str:
        """Vector set searched for similar listings."""
        return f"{self.key_prefix}:similar:{self.search.vector}"
