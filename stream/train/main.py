"""``toyfuse train``: fit video pooling and fusion on cached features; keep the best epoch by validation."""

import json
import logging
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from stream import cli
from stream.contracts.index import IndexSchema
from stream.contracts.shapes import MODALITIES
from stream.errors import EmbeddingDimMismatch, SettingsError
from stream.model.fusion import FusionConfig, ListingBatch, ListingModel
from stream.model.loading import load_exported
from stream.train import cache
from stream.train.agreement import NoAgreementPairs, agreement_groups
from stream.train.cache import FeatureSet
from stream.train.data import (
    PairBatchSampler,
    Rows,
    donor_pools,
    draw_donors,
    drop_modalities,
    listing_view,
    positive_groups,
    shared_text_views,
    split_modalities,
    split_rows,
    swap_modalities,
    take,
)
from stream.train.export import load_checkpoint
from stream.train.loss import fusion_loss
from stream.train.params import TrainParams, from_options, train_options
from stream.train.ranking import retrieval_metrics
from stream.train.reliability import reweight
from stream.train.retrieval import embed, fusion_scores, keep_modalities

log = logging.getLogger(__name__)
BEST = "best.pt"
LAST = "last.pt"
MAX_LOGIT_SCALE = math.log(100.0)  # as in CLIP: the temperature never drops below 0.01
MEDIA = ("image", "video")  # the other side of the label-free validation's text-only view
REVIEWS = MODALITIES.index("reviews")


@dataclass(frozen=True)
class TrainSummary:
    """Outcome of a run."""

    best_epoch: int
    best_val: dict[str, float]
    epochs_run: int
    checkpoint: Path


def seed_everything(seed: int) -> None:
    """Seed random, numpy and torch, and make torch use deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def cosine_lr(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up to 1, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def check_dims(config: FusionConfig, features: FeatureSet) -> None:
    """Raise EmbeddingDimMismatch when the cached vectors do not have the sizes the model expects."""
    found = {
        "text": features.text.shape[1],
        "text_multilingual": features.text_multilingual.shape[1],
        "image": features.image.shape[1],
        "video": features.frames.shape[2],
        "reviews": features.reviews.shape[1],
    }
    for name, dims in config.input_dims().items():
        if found[name] != dims:
            raise EmbeddingDimMismatch(
                f"cached {name} features are {found[name]}-d but the embedding layout says {dims}; "
                "re-extract features with `toyfuse features` or fix schemas/embedding_index.yaml"
            )


def starting_model(path: Path) -> ListingModel:
    """The network to adapt: a checkpoint file, or the model exported into a repository folder.

    Raises:
        SettingsError: nothing loadable is there.
    """
    return load_exported(path) if path.is_dir() else load_checkpoint(path)


def check_params(params: TrainParams, config: FusionConfig, features: FeatureSet) -> None:
    """Refuse parameters that cannot run together; warn when weak labels find no key.

    Raises:
        SettingsError: ``val_labels`` is none but the allowed modalities lack text or both image and video,
            or the fusion keeps text and media in separate blocks (their cosine is always 0); recentring is
            asked of a fusion without centred blocks; no epoch is asked and nothing to recentre or reweight;
            reweighting is asked with epochs that would train it away.
    """
    if params.val_labels == "none" and config.fusion_kind == "blocks":
        raise SettingsError(
            "--val-labels none compares a text-only view with an image/video-only view, which block fusion "
            "keeps in separate blocks (cosine 0); pass --val-labels agreement or --fusion-kind attention"
        )
    if params.recentre and not (config.fusion_kind == "blocks" and config.center_blocks):
        raise SettingsError(
            "--recentre moves the blocks' centres, and this fusion has none (--fusion-kind "
            f"{config.fusion_kind}, --center-blocks {config.center_blocks}); drop --recentre"
        )
    if params.epochs == 0 and not (params.init and (params.recentre or params.reweight)):
        raise SettingsError(
            "--epochs 0 trains nothing: it only recentres or reweights a starting model; pass --init and "
            "--recentre or --reweight, or more epochs"
        )
    if params.reweight and params.epochs:
        raise SettingsError(
            "--reweight sets the block weights of a trained model, which more epochs would train away; pass "
            "--epochs 0 (with --init), or drop --reweight"
        )
    if params.val_labels == "none" and (
        "text" not in params.modalities or not set(MEDIA) & set(params.modalities)
    ):
        raise SettingsError(
            f"label-free validation retrieves a listing's image/video view from its text, but --modalities is "
            f"{','.join(params.modalities)}; allow text and image or video, or pass --val-labels product"
        )
    if params.labels == "weak" and not any(features.weak_keys):
        log.warning(
            "no listing has a weak key (GTIN, brand + model number, parent_asin); every listing is trained "
            "as in --labels none. A cache written before weak keys has none: extract it again"
        )


def optimizer_for(model: ListingModel, params: TrainParams) -> torch.optim.AdamW:
    """AdamW, decaying weight matrices only (not norms, biases, embeddings or the logit scale)."""
    named = list(model.named_parameters())
    decay = [p for name, p in named if p.ndim >= 2 and "embedding" not in name]
    rest = [p for name, p in named if not (p.ndim >= 2 and "embedding" not in name)]
    groups = [{"params": decay, "weight_decay": params.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=params.lr)


def concat(batches: list[ListingBatch]) -> ListingBatch:
    """Stack batches row-wise (one forward pass for all views)."""
    return ListingBatch(*(torch.cat(tensors) for tensors in zip(*batches, strict=True)))


def select(rows: torch.Tensor, chosen: ListingBatch, other: ListingBatch) -> ListingBatch:
    """Row ``i`` of ``chosen`` where ``rows[i]``, else of ``other``."""
    return ListingBatch(
        *(torch.where(rows.view(-1, *[1] * (a.ndim - 1)), a, b) for a, b in zip(chosen, other, strict=True))
    )


def crossmodal_scores(
    model: ListingModel, features: FeatureSet, modalities: Sequence[str]
) -> dict[str, float]:
    """Label-free validation: each listing's text-only view must retrieve its own image/video view, and back.

    Only listings with text and an allowed image or video take part; ``score`` is the mean Recall@1.
    """
    batch = keep_modalities(features.listing_batch(), modalities)
    text_side = torch.tensor([name == "text" for name in MODALITIES], dtype=batch.modality_mask.dtype)
    media_side = torch.tensor([name in MEDIA for name in MODALITIES], dtype=batch.modality_mask.dtype)
    mask = batch.modality_mask
    rows = np.flatnonzero(((mask * text_side).sum(1) > 0) & ((mask * media_side).sum(1) > 0)).astype(np.int64)
    listings = take(batch, rows)
    texts, _ = embed(model, listings._replace(modality_mask=listings.modality_mask * text_side))
    media, _ = embed(model, listings._replace(modality_mask=listings.modality_mask * media_side))
    ids = list(features.listing_ids[rows])
    scores = {
        "text_to_media_recall@1": retrieval_metrics(texts, ids, media, ids).get("recall@1", 0.0),
        "media_to_text_recall@1": retrieval_metrics(media, ids, texts, ids).get("recall@1", 0.0),
    }
    return scores | {"score": float(np.mean(list(scores.values())))}


class Trainer:
    """One training run: the data, the model, the optimiser and the step loop."""

    def __init__(self, params: TrainParams, config: FusionConfig, features: FeatureSet) -> None:
        self.params, self.config, self.features = params, config, features
        self.rows = split_rows(list(features.families), params.split_seed)
        self.listings = keep_modalities(features.listing_batch(), params.modalities)
        self.queries = features.query_batch()
        self.photos = torch.from_numpy(features.photos.astype(np.float32))
        self.photo_mask = torch.from_numpy(features.photo_mask.astype(np.float32))
        present = self.listings.modality_mask.sum(dim=1).numpy() > 0
        train_rows = self.rows["train"][present[self.rows["train"]]]
        groups = (
            agreement_groups(features, train_rows.tolist(), fused=self.mining_vectors())
            if params.labels == "agreement"
            else positive_groups(list(features.families), list(features.weak_keys), params.labels)
        )
        self.sampler = PairBatchSampler(
            groups,
            list(features.categories),
            train_rows,
            params.batch_products,
            params.seed,
            params.group_by_category,
            singletons=params.labels != "product",
        )
        self.donors = donor_pools(self.listings.modality_mask, train_rows)
        self.model = ListingModel(config)
        if params.init is not None:
            self.model.load_state_dict(starting_model(params.init).state_dict())
        self.optimizer = optimizer_for(self.model, params)
        total = params.epochs * len(self.sampler)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: cosine_lr(step, total, params.warmup_steps)
        )
        self.generator = torch.Generator().manual_seed(params.seed)
        self.steps = 0
        self.val = self.validation_listings()

    def validation_listings(self) -> FeatureSet:
        """The validation split, its products replaced by agreement pairs under ``--val-labels agreement``.

        Raises:
            NoAgreementPairs: under ``--val-labels agreement``, the split holds no agreeing pair.
        """
        val = self.features.subset(self.rows["val"])
        if self.params.val_labels != "agreement":
            return val
        groups = agreement_groups(val, list(range(len(val))))
        if len(set(groups)) == len(groups):
            raise NoAgreementPairs(
                f"--val-labels agreement: photos and texts agree on no pair among the {len(val)} validation "
                f"listings of split seed {self.params.split_seed}, so early stopping would have nothing to "
                "score; pass --val-labels none, or another --split-seed"
            )
        return replace(val, families=np.array(groups))

    def mining_vectors(self) -> NDArray[np.float32] | None:
        """Fused vectors of every listing under ``--agreement-from`` (None without it)."""
        if self.params.agreement_from is None:
            return None
        return embed(starting_model(self.params.agreement_from), self.features.listing_batch())[0]

    def noise_rates(self) -> torch.Tensor | None:
        """This batch's chance of swapping in another listing's vector, per modality; None when never."""
        if not (self.params.noise_rate or self.params.noisy_reviews_rate):
            return None
        rates = torch.full((len(MODALITIES),), self.params.noise_rate)
        if self.params.noisy_reviews_rate and float(torch.rand(1, generator=self.generator)) < (
            self.params.noisy_reviews_rate
        ):
            rates[REVIEWS] = 1.0
        return rates

    def noisy(self, batch: ListingBatch, rows: Rows, rates: torch.Tensor | None) -> ListingBatch:
        """The view with modalities swapped for other training listings' at ``rates``."""
        if rates is None:
            return batch
        donors = draw_donors(rows, batch.modality_mask, self.donors, rates, self.generator)
        return swap_modalities(batch, donors, self.listings)

    def view(self, rows: Rows, rates: torch.Tensor | None = None) -> ListingBatch:
        """Listings at ``rows`` with noise and modality dropout applied."""
        batch = self.noisy(take(self.listings, rows), rows, rates)
        mask = drop_modalities(batch.modality_mask, self.config.modality_dropout, self.generator)
        return batch._replace(modality_mask=mask)

    def self_views(self, rows: Rows, rates: torch.Tensor | None) -> tuple[ListingBatch, ListingBatch]:
        """Two augmented views of each listing at ``rows``: disjoint modality subsets where it has several
        (attention fusion), or both with the text and a coin for every other modality (block fusion)."""
        batch, index = take(self.listings, rows), torch.from_numpy(rows)
        split = shared_text_views if self.config.fusion_kind == "blocks" else split_modalities
        masks = split(batch.modality_mask, self.generator)
        photos, photo_mask = self.photos[index], self.photo_mask[index]
        first, second = (
            self.noisy(
                listing_view(batch, mask, photos, photo_mask, self.params.augment, self.generator),
                rows,
                rates,
            )
            for mask in masks
        )
        return first, second

    def views(self, first: Rows, second: Rows) -> tuple[ListingBatch, ListingBatch]:
        """The two views of a batch of pairs; a listing paired with itself gets :meth:`self_views`."""
        rates = self.noise_rates()
        pair = self.view(first, rates), self.view(second, rates)
        alone = torch.from_numpy(first == second)
        if not alone.any():
            return pair
        own = self.self_views(first, rates)
        return select(alone, own[0], pair[0]), select(alone, own[1], pair[1])

    def step(self, first: Rows, second: Rows) -> dict[str, float]:
        """One optimiser step on a batch of listing pairs (and the queries written from ``first``)."""
        self.model.train()
        with_queries = "text" in self.params.modalities and self.params.loss.query > 0
        views = [*self.views(first, second)] + ([take(self.queries, first)] if with_queries else [])
        fused, _ = self.model(concat(views))
        parts = fused.split(len(first))
        loss, values = fusion_loss(
            parts[0],
            parts[1],
            parts[2] if with_queries else None,
            self.model.fusion.logit_scale,
            self.params.loss,
        )
        self.optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.params.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        with torch.no_grad():
            self.model.fusion.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)
        self.steps += 1
        return values | {"loss": float(loss.detach())}

    def run_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch; returns the mean of each loss term."""
        totals: dict[str, list[float]] = {}
        batches = tqdm(
            self.sampler.epoch(epoch),
            total=len(self.sampler),
            desc=f"epoch {epoch + 1}",
            leave=False,
            disable=not self.params.progress,
        )
        for first, second in batches:
            if self.params.steps is not None and self.steps >= self.params.steps:
                break
            for name, value in self.step(first, second).items():
                totals.setdefault(name, []).append(value)
            batches.set_postfix(loss=f"{totals['loss'][-1]:.3f}")
        return {name: float(np.mean(values)) for name, values in totals.items()}

    def validate(self) -> dict[str, float]:
        """Validation scores: :func:`fusion_scores` by product or by agreement pairs, or the label-free
        :func:`crossmodal_scores`; under ``--recentre``, of the model centred on every listing first, and
        under ``--reweight``, with its block weights scaled by reliability on every listing."""
        if self.params.recentre:
            self.model.recentre(self.listings)
        if self.params.reweight:
            accuracies = reweight(self.model, self.listings)
            log.info("reweighted by estimated accuracy: %s", {k: round(v, 3) for k, v in accuracies.items()})
        if self.params.val_labels == "none":
            return crossmodal_scores(self.model, self.val, self.params.modalities)
        return fusion_scores(self.model, self.val, self.params.modalities)

    def save(self, path: Path, epoch: int, val: dict[str, float]) -> None:
        """Write a checkpoint: weights, architecture, run parameters and validation scores."""
        torch.save(
            {
                "model": self.model.state_dict(),
                "config": asdict(self.config),
                "params": _jsonable(asdict(self.params)),
                "epoch": epoch,
                "val": val,
            },
            path,
        )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def train(params: TrainParams, config: FusionConfig, features: FeatureSet) -> TrainSummary:
    """Train until ``params.epochs`` or early stopping; the best epoch by validation score is ``best.pt``."""
    seed_everything(params.seed)
    check_dims(config, features)
    check_params(params, config, features)
    params.out_dir.mkdir(parents=True, exist_ok=True)
    config.write_json(params.out_dir / "config.json")
    trainer = Trainer(params, config, features)
    history: list[dict[str, Any]] = []
    best_epoch, best_val = -1, {"score": -1.0}
    if params.epochs == 0:
        val = trainer.validate()
        trainer.save(params.out_dir / BEST, 0, val)
        trainer.save(params.out_dir / LAST, 0, val)
        best_epoch, best_val = 0, val
    epochs = tqdm(range(params.epochs), desc="training", disable=not params.progress)
    for epoch in epochs:
        losses = trainer.run_epoch(epoch)
        val = trainer.validate()
        history.append({"epoch": epoch + 1, "loss": losses, "val": val})
        trainer.save(params.out_dir / LAST, epoch + 1, val)
        if val["score"] > best_val["score"]:
            best_epoch, best_val = epoch + 1, val
            trainer.save(params.out_dir / BEST, epoch + 1, val)
        epochs.set_postfix(val=f"{val['score']:.3f}", best=f"{best_val['score']:.3f}@{best_epoch}")
        stalled = epoch + 1 - best_epoch >= params.patience
        if stalled or (params.steps is not None and trainer.steps >= params.steps):
            break
    (params.out_dir / "history.json").write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")
    return TrainSummary(best_epoch, best_val, len(history), params.out_dir / BEST)


@click.command("train", context_settings={"show_default": True})
@train_options
def command(**options: Any) -> None:
    """Train video pooling and fusion on cached features; keep the best epoch by validation."""
    params, overrides = from_options(options)
    config = FusionConfig.from_schema(IndexSchema.from_yaml(params.schema), **overrides)
    if params.init is not None:
        config = starting_model(params.init).config
        changed = [name for name, value in overrides.items() if getattr(config, name) != value]
        if changed:
            raise click.UsageError(
                f"--init keeps the architecture of {params.init}; drop {', '.join(changed)}"
            )
    summary = train(params, config, cache.load(params.features))
    scores = ", ".join(f"{name} {value:.3f}" for name, value in summary.best_val.items())
    click.echo(f"trained {summary.epochs_run} epochs; best epoch {summary.best_epoch}: {scores}")
    click.echo(f"checkpoint: {summary.checkpoint}")


def main(argv: list[str]) -> int:
    """Run ``toyfuse train`` with ``argv`` in this process.

    Returns:
        The exit status: 0, or 1 after printing a FeatureServiceError on stderr.

    Raises:
        SystemExit: on invalid arguments (click prints the reason).
    """
    return cli.run(["train", *argv])
