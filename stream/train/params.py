"""Command-line parameters of ``toyfuse train``: the optimisation settings and the architecture overrides."""

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.config import REPO_ROOT
from stream.contracts.shapes import MODALITIES
from stream.train.loss import LossWeights

ARCHITECTURE_FLAGS = (
    "shared_dim",
    "hidden_dim",
    "layers",
    "heads",
    "dropout",
    "modality_dropout",
    "temperature",
    "video_pooling",
)


@dataclass(frozen=True)
class TrainParams:
    """How one training run goes; saved in every checkpoint."""

    features: Path  # cached encoder features (.npz written by `toyfuse features`)
    out_dir: Path  # checkpoints, history and config go here
    schema: Path = REPO_ROOT / "schemas" / "embedding_index.yaml"  # the vector dims come from here
    epochs: int = 150  # most epochs (one epoch = every training product once, as a pair of listings)
    batch_products: int = 48  # products per batch; each contributes two listings (and one query)
    lr: float = 1e-3  # peak AdamW learning rate
    weight_decay: float = 0.05  # AdamW weight decay on matrices (not on norms, biases, logit scale)
    warmup_steps: int = 30  # linear warm-up before the cosine decay
    grad_clip: float = 1.0  # max gradient norm
    patience: int = 25  # stop after this many epochs without a better validation score
    seed: int = 0  # seeds torch, numpy and random
    split_seed: int = 0  # seeds the product-level train/val/test split (evaluation must use the same)
    modalities: tuple[str, ...] = (
        MODALITIES  # inputs the model may see (e.g. only "video" for a pooling study)
    )
    group_by_category: bool = True  # batch products of one category together (hard in-batch negatives)
    loss: LossWeights = field(default_factory=LossWeights)
    steps: int | None = None  # stop after this many optimiser steps in total (smoke tests)
    progress: bool = True  # show tqdm progress bars


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``toyfuse train``."""
    parser = argparse.ArgumentParser(prog="toyfuse train", description="Train video pooling and fusion.")
    parser.add_argument("--features", type=Path, required=True, help="cached features (.npz)")
    parser.add_argument("--out", type=Path, required=True, help="output folder for checkpoints")
    parser.add_argument("--schema", type=Path, default=TrainParams.schema, help="embedding_index.yaml")
    for name in ("epochs", "batch_products", "warmup_steps", "patience", "seed", "split_seed", "steps"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(TrainParams, name, None))
    for name in ("lr", "weight_decay", "grad_clip"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(TrainParams, name))
    parser.add_argument("--triplet-weight", type=float, default=LossWeights.triplet)
    parser.add_argument("--margin", type=float, default=LossWeights.margin)
    parser.add_argument("--query-weight", type=float, default=LossWeights.query)
    parser.add_argument(
        "--modalities", default=",".join(MODALITIES), help=f"subset of {','.join(MODALITIES)}"
    )
    parser.add_argument("--no-category-batches", action="store_true", help="batch products at random")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    for name in ("shared_dim", "hidden_dim", "layers", "heads"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int)
    for name in ("dropout", "modality_dropout", "temperature"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float)
    parser.add_argument("--video-pooling", choices=("attention", "netvlad"))
    return parser


def parse(argv: list[str]) -> tuple[TrainParams, dict[str, Any]]:
    """Parse ``toyfuse train`` arguments into run parameters and FusionConfig overrides.

    Raises:
        SystemExit: on invalid arguments (argparse prints the reason).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    modalities = tuple(name.strip() for name in args.modalities.split(",") if name.strip())
    unknown = sorted(set(modalities) - set(MODALITIES))
    if unknown or not modalities:
        parser.error(f"--modalities {args.modalities!r}: choose from {', '.join(MODALITIES)}")
    params = TrainParams(
        features=args.features,
        out_dir=args.out,
        schema=args.schema,
        epochs=args.epochs,
        batch_products=args.batch_products,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        grad_clip=args.grad_clip,
        patience=args.patience,
        seed=args.seed,
        split_seed=args.split_seed,
        modalities=modalities,
        group_by_category=not args.no_category_batches,
        loss=LossWeights(triplet=args.triplet_weight, margin=args.margin, query=args.query_weight),
        steps=args.steps,
        progress=not args.no_progress,
    )
    overrides = {name: getattr(args, name) for name in ARCHITECTURE_FLAGS if getattr(args, name) is not None}
    return params, overrides
