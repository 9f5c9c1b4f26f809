"""The fusion network: learned video pooling, per-modality projections and attention over modality tokens."""

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from stream.contracts.index import IndexSchema
from stream.contracts.shapes import FRAMES_PER_VIDEO, MODALITIES
from stream.errors import SettingsError

VideoPoolingKind = Literal["attention", "netvlad"]
FusionKind = Literal["blocks", "attention"]
INPUTS = ("text", "text_multilingual", "image", "video", "reviews")  # fusion inputs, in token order
TOKEN_MODALITY = (0, 0, 1, 2, 3)  # each input's index in MODALITIES: "text" covers both text vectors


@dataclass(frozen=True)
class FusionConfig:
    """Architecture of the fusion network; saved as JSON beside the exported weights."""

    text_dims: int  # all-MiniLM-L6-v2 listing text vector
    text_multilingual_dims: int  # multilingual USE v3 listing text vector
    image_dims: (
        int  # EfficientNet-Lite0 features: the pooled photo vector, each video frame, the pooled video
    )
    reviews_dims: int  # weighted mean of the reviews' text_multilingual vectors
    frames: int = FRAMES_PER_VIDEO  # frames per video, padded and masked
    shared_dim: int = 256  # the fused space, and the width of every modality token
    hidden_dim: int = (
        128  # hidden width of each modality's projection MLP (256 scored the same on validation)
    )
    heads: int = 4  # attention heads of the token layers
    layers: int = (
        0  # transformer layers over the modality tokens before attention pooling (1 overfit on validation)
    )
    dropout: float = 0.1  # dropout inside the projections and token layers
    modality_dropout: float = 0.3  # training only: chance that each present modality is hidden from a view
    temperature: float = 0.07  # initial InfoNCE temperature (learned, as a log logit scale)
    video_pooling: VideoPoolingKind = "attention"  # temporal pooling of frames (beat NetVLAD on validation)
    pooling_hidden: int = 128  # hidden width of the attention-pooling frame scorer
    netvlad_clusters: int = 8  # NetVLAD cluster count
    netvlad_dim: int = 64  # frames are projected to this width before NetVLAD residuals
    fusion_kind: FusionKind = "blocks"  # blocks: one block of the fused vector per modality; attention: mixed
    block_shares: tuple[int, ...] = (
        3,
        4,
        5,
        2,
        2,
    )  # blocks: each input's share of the fused width (INPUTS order)
    gate_scale: float = (
        10.0  # blocks: input weights are softmax(gate_scale * logits), so they learn that faster
    )
    center_blocks: bool = True  # blocks: subtract each block's mean over listings that have the input

    def __post_init__(self) -> None:
        if len(self.block_shares) != len(INPUTS) or min(self.block_widths()) < 1:
            raise SettingsError(
                f"block_shares {list(self.block_shares)} must give each of {', '.join(INPUTS)} a share that "
                f"leaves it at least one of the {self.shared_dim} fused dims; change them or shared_dim"
            )

    def block_widths(self) -> tuple[int, ...]:
        """Each input's block width: ``shared_dim`` split by ``block_shares``, the remainder to the first."""
        total = sum(self.block_shares)
        widths = [self.shared_dim * share // total for share in self.block_shares]
        widths[0] += self.shared_dim - sum(widths)
        return tuple(widths)

    @classmethod
    def from_schema(cls, schema: IndexSchema, **overrides: Any) -> "FusionConfig":
        """Take the input dimensions from the embedding layout; ``overrides`` set the other fields.

        Raises:
            SettingsError: the layout's video and image vectors differ in size (frames are images).
        """
        dims = {name: schema.vectors[name].dims for name in INPUTS}
        if dims["video"] != dims["image"]:
            raise SettingsError(
                f"video vectors ({dims['video']}-d) must match image vectors ({dims['image']}-d): frames go "
                "through the image encoder; fix schemas/embedding_index.yaml"
            )
        overrides.setdefault("shared_dim", schema.vectors["fused"].dims)
        return cls(dims["text"], dims["text_multilingual"], dims["image"], dims["reviews"], **overrides)

    def input_dims(self) -> dict[str, int]:
        """Dimension of each fusion input, by name."""
        return {
            "text": self.text_dims,
            "text_multilingual": self.text_multilingual_dims,
            "image": self.image_dims,
            "video": self.image_dims,
            "reviews": self.reviews_dims,
        }

    def with_changes(self, **changes: Any) -> "FusionConfig":
        """A copy with some fields replaced."""
        return replace(self, **changes)

    def write_json(self, path: Path) -> None:
        """Save the configuration as JSON."""
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def read_json(cls, path: Path) -> "FusionConfig":
        """Load a configuration saved by :meth:`write_json` (one saved before blocks existed is attention)."""
        fields = json.loads(path.read_text(encoding="utf-8"))
        fields.setdefault("fusion_kind", "attention")
        fields["block_shares"] = tuple(fields.get("block_shares", cls.block_shares))
        return cls(**fields)


class ListingBatch(NamedTuple):
    """Cached encoder outputs of a batch of listings (zeros where a modality is missing)."""

    text: Tensor  # [B, text_dims]
    text_multilingual: Tensor  # [B, text_multilingual_dims]
    image: Tensor  # [B, image_dims], L2-normalised mean of the photos
    frames: Tensor  # [B, frames, image_dims], raw per-frame features
    frame_mask: Tensor  # [B, frames], 1.0 for real frames
    reviews: Tensor  # [B, reviews_dims]
    modality_mask: Tensor  # [B, 4], presence of (text, image, video, reviews)


def masked_softmax(scores: Tensor, present: Tensor) -> Tensor:
    """Softmax over the last axis restricted to ``present`` entries; rows with none present give zeros."""
    filled = scores.masked_fill(~present, torch.finfo(scores.dtype).min)
    weights = torch.softmax(filled, dim=-1) * present
    return weights / weights.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)


class AttentionPooling(nn.Module):
    """Frames weighted by a learned score (softmax over the real frames), then summed."""

    def __init__(self, dims: int, hidden: int) -> None:
        super().__init__()
        self.score = nn.Sequential(
            nn.LayerNorm(dims), nn.Linear(dims, hidden), nn.Tanh(), nn.Linear(hidden, 1)
        )

    def forward(self, frames: Tensor, frame_mask: Tensor) -> Tensor:
        weights = masked_softmax(self.score(frames).squeeze(-1), frame_mask > 0)
        pooled: Tensor = (weights.unsqueeze(-1) * frames).sum(dim=1)
        return pooled


class NetVLADPooling(nn.Module):
    """NetVLAD (as in ActionVLAD): soft-assigned residuals to learned centres, projected to frame width."""

    def __init__(self, dims: int, clusters: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.LayerNorm(dims), nn.Linear(dims, reduced))
        self.assign = nn.Linear(reduced, clusters)
        self.centres = nn.Parameter(torch.randn(clusters, reduced) * 0.1)
        self.project = nn.Linear(clusters * reduced, dims)

    def forward(self, frames: Tensor, frame_mask: Tensor) -> Tensor:
        reduced = self.reduce(frames)
        assignment = torch.softmax(self.assign(reduced), dim=-1) * frame_mask.unsqueeze(-1)
        residuals = torch.einsum("btk,btr->bkr", assignment, reduced)
        residuals = residuals - assignment.sum(dim=1).unsqueeze(-1) * self.centres
        vlad = F.normalize(F.normalize(residuals, dim=-1).flatten(1), dim=-1)
        projected: Tensor = self.project(vlad)
        return projected * (frame_mask.sum(dim=1, keepdim=True) > 0)


class VideoPooling(nn.Module):
    """Learned temporal pooling: [B, T, d] frame features and a [B, T] mask -> [B, d], L2-normalised."""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.pool: nn.Module
        if config.video_pooling == "attention":
            self.pool = AttentionPooling(config.image_dims, config.pooling_hidden)
        else:
            self.pool = NetVLADPooling(config.image_dims, config.netvlad_clusters, config.netvlad_dim)

    def forward(self, frames: Tensor, frame_mask: Tensor) -> Tensor:
        pooled: Tensor = self.pool(frames, frame_mask)
        return F.normalize(pooled, dim=-1)


class ModalityProjection(nn.Sequential):
    """LayerNorm, Linear, GELU, Linear: one modality's vector -> a token in the shared space."""

    def __init__(self, dims: int, hidden: int, shared: int, dropout: float) -> None:
        super().__init__(
            nn.LayerNorm(dims),
            nn.Linear(dims, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, shared),
        )


class TokenLayer(nn.Module):
    """Pre-norm transformer layer over the modality tokens; absent tokens are never attended to."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 2 * width), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * width, width)
        )

    def forward(self, tokens: Tensor, present: Tensor) -> Tensor:
        normed = self.attention_norm(tokens)
        mixed, _ = self.attention(normed, normed, normed, key_padding_mask=~present, need_weights=False)
        tokens = tokens + mixed
        updated: Tensor = tokens + self.mlp(self.mlp_norm(tokens))
        return updated


class PresentCentering(nn.Module):
    """Subtracts the mean of a block over the rows that have its input: the batch's while training (and a
    running mean updated from it), the running mean in evaluation. A projection that maps every input to
    one direction then contributes nothing, instead of pulling together every listing that has the input."""

    running_mean: Tensor

    def __init__(self, width: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(width))

    def forward(self, block: Tensor, present: Tensor) -> Tensor:
        if not self.training:
            return block - self.running_mean
        rows = present.unsqueeze(-1).to(block.dtype)
        count = rows.sum()
        if count == 0:
            return block - self.running_mean
        mean = (block * rows).sum(dim=0) / count
        with torch.no_grad():
            self.running_mean.lerp_(mean.detach(), self.momentum)
        return block - mean


class FusionModel(nn.Module):
    """Five modality vectors and a presence mask -> one L2-normalised vector and per-modality weights.

    ``blocks`` (the default): each input is projected into its own block of the fused vector, scaled by the
    square root of a learned weight (softmax over the present inputs), so the cosine of two listings is a
    weighted sum of per-modality cosines. No cross-modal term can pull two listings together or apart, an
    input the training taught to distrust keeps a small weight, and a missing one hands its weight to the
    rest. ``attention``: tokens in one shared space mixed by attention pooling (the first shipped model).
    """

    token_modality: Tensor

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.kind = config.fusion_kind
        width = config.shared_dim
        widths = dict(
            zip(
                INPUTS, config.block_widths() if self.kind == "blocks" else [width] * len(INPUTS), strict=True
            )
        )
        self.projections = nn.ModuleDict(
            {
                name: ModalityProjection(dims, config.hidden_dim, widths[name], config.dropout)
                for name, dims in config.input_dims().items()
            }
        )
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.temperature)))
        self.register_buffer("token_modality", torch.tensor(TOKEN_MODALITY), persistent=False)
        if self.kind == "blocks":
            self.gate_scale = config.gate_scale
            self.input_logits = nn.Parameter(torch.zeros(len(INPUTS)))
            self.centering = nn.ModuleDict(
                {name: PresentCentering(widths[name]) for name in INPUTS} if config.center_blocks else {}
            )
            return
        self.modality_embedding = nn.Parameter(torch.randn(len(INPUTS), width) * 0.02)
        self.layers = nn.ModuleList(
            TokenLayer(width, config.heads, config.dropout) for _ in range(config.layers)
        )
        self.pool_norm = nn.LayerNorm(width)
        self.pool_query = nn.Parameter(torch.randn(width) * 0.02)
        self.output = nn.Linear(width, width)

    def forward(
        self,
        text: Tensor,
        text_multilingual: Tensor,
        image: Tensor,
        video: Tensor,
        reviews: Tensor,
        modality_mask: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Fuse a batch.

        Args:
            text, text_multilingual, image, video, reviews: [B, dims] each; ignored where masked out.
            modality_mask: [B, 4] presence of (text, image, video, reviews); "text" covers both text vectors.

        Returns:
            fused [B, shared_dim] (unit length; zeros for a row with nothing present) and
            weights [B, 4] (summing to 1 over the present modalities, 0 for absent ones).
        """
        inputs = (text, text_multilingual, image, video, reviews)
        present = modality_mask[:, self.token_modality] > 0
        if self.kind == "blocks":
            return self._blocks(inputs, present)
        tokens = torch.stack(
            [self.projections[name](x) for name, x in zip(INPUTS, inputs, strict=True)], dim=1
        )
        tokens = tokens + self.modality_embedding
        attendable = present | ~present.any(
            dim=1, keepdim=True
        )  # a row with nothing present must not give NaN
        for layer in self.layers:
            tokens = layer(tokens, attendable)
        scores = self.pool_norm(tokens) @ self.pool_query / math.sqrt(tokens.shape[-1])
        weights = masked_softmax(scores, present)
        fused = self.output((weights.unsqueeze(-1) * tokens).sum(dim=1)) * present.any(dim=1, keepdim=True)
        return F.normalize(fused, dim=-1), self._per_modality(weights)

    def _blocks(self, inputs: tuple[Tensor, ...], present: Tensor) -> tuple[Tensor, Tensor]:
        weights = masked_softmax((self.gate_scale * self.input_logits).expand(len(present), -1), present)
        scales = (
            torch.where(present, weights, torch.ones_like(weights)).sqrt() * present
        )  # no inf gradient at 0
        blocks = [block * scales[:, i, None] for i, block in enumerate(self.unit_blocks(inputs, present))]
        return F.normalize(torch.cat(blocks, dim=1), dim=-1), self._per_modality(weights)

    def unit_blocks(self, inputs: tuple[Tensor, ...], present: Tensor) -> list[Tensor]:
        """Blocks: each input's projection, centred and L2-normalised, before its weight scales it (one
        [B, width] tensor per input, in :data:`INPUTS` order; rows without the input are meaningless)."""
        return [
            F.normalize(self._centred(name, self.projections[name](x), present[:, i]), dim=-1)
            for i, (name, x) in enumerate(zip(INPUTS, inputs, strict=True))
        ]

    def input_weights(self) -> Tensor:
        """Blocks: the learned weight of each input when all are present ([5], summing to 1)."""
        return torch.softmax(self.gate_scale * self.input_logits.detach(), dim=0)

    @torch.no_grad()
    def set_input_weights(self, weights: Tensor) -> None:
        """Blocks: make :meth:`input_weights` equal ``weights`` (positive, [5]; normalised here)."""
        if weights.shape != self.input_logits.shape or not bool((weights > 0).all()):
            raise ValueError(f"input weights must be {len(INPUTS)} positive numbers, got {weights.tolist()}")
        logits = (weights / weights.sum()).log() / self.gate_scale
        self.input_logits.copy_(logits - logits.mean())

    @torch.no_grad()
    def recentre(self, inputs: tuple[Tensor, ...], present: Tensor) -> None:
        """Centre each block on these listings: its running mean becomes the mean of its projection over the
        rows that have its input (blocks that fewer than two rows have keep theirs). Label-free adaptation
        to the catalog served: a mean learned on another catalog leaves an offset that pulls together every
        listing having the input, however unrelated."""
        for i, (name, x) in enumerate(zip(INPUTS, inputs, strict=True)):
            rows = present[:, i]
            if name in self.centering and int(rows.sum()) >= 2:
                centering = cast(PresentCentering, self.centering[name])
                centering.running_mean.copy_(self.projections[name](x[rows]).mean(dim=0))

    def _centred(self, name: str, block: Tensor, present: Tensor) -> Tensor:
        return self.centering[name](block, present) if name in self.centering else block

    def _per_modality(self, weights: Tensor) -> Tensor:
        """Input weights [B, 5] summed into modality weights [B, 4] (both text vectors are "text")."""
        per_modality: Tensor = weights.new_zeros(weights.shape[0], len(MODALITIES)).index_add(
            1, self.token_modality, weights
        )
        return per_modality


class ListingModel(nn.Module):
    """Video pooling feeding fusion: trained end to end, exported as two Triton models."""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        self.video_pooling = VideoPooling(config)
        self.fusion = FusionModel(config)

    def forward(self, batch: ListingBatch) -> tuple[Tensor, Tensor]:
        """Pool the frames, then fuse; returns the fused vectors and modality weights."""
        video = self.video_pooling(batch.frames, batch.frame_mask)
        fused: tuple[Tensor, Tensor] = self.fusion(
            batch.text, batch.text_multilingual, batch.image, video, batch.reviews, batch.modality_mask
        )
        return fused

    @torch.no_grad()
    def recentre(self, batch: ListingBatch) -> None:
        """Centre every block on the listings of ``batch`` (see :meth:`FusionModel.recentre`)."""
        training = self.training
        self.eval()
        self.fusion.recentre(*self.fusion_inputs(batch))
        self.train(training)

    def fusion_inputs(self, batch: ListingBatch) -> tuple[tuple[Tensor, ...], Tensor]:
        """The five fusion inputs of ``batch`` (video pooled) and the [B, 5] presence of each input."""
        video = self.video_pooling(batch.frames, batch.frame_mask)
        inputs = (batch.text, batch.text_multilingual, batch.image, video, batch.reviews)
        return inputs, batch.modality_mask[:, self.fusion.token_modality] > 0
