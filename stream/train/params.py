"""Command-line parameters of ``toyfuse train``: the optimisation settings and the architecture overrides."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import click

from stream.config import REPO_ROOT
from stream.contracts.shapes import MODALITIES
from stream.model.fusion import FusionConfig, FusionKind, VideoPoolingKind
from stream.train.data import LabelMode, ViewAugment
from stream.train.loss import LossWeights

ValLabelMode = Literal[
    "product", "agreement", "none"
]  # how validation (early stopping) decides what a hit is
ARCHITECTURE_FLAGS = (
    "shared_dim",
    "hidden_dim",
    "layers",
    "heads",
    "dropout",
    "modality_dropout",
    "temperature",
    "video_pooling",
    "fusion_kind",
    "gate_scale",
    "center_blocks",
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
    noise_rate: float = (
        0.15  # chance per present modality per view of showing another training listing's vector
    )
    noisy_reviews_rate: float = 0.25  # chance per batch that every listing shows another listing's reviews
    labels: LabelMode = "product"  # positives: same product, same weak key, or two views of one listing
    val_labels: ValLabelMode = "product"  # by product, by agreement pairs, or text view -> media view
    augment: ViewAugment = field(default_factory=ViewAugment)  # views of one listing (weak and none labels)
    init: Path | None = None  # start from this checkpoint or exported model repository (adaptation)
    agreement_from: Path | None = None  # --labels agreement: mine pairs with this model's fused vectors too
    recentre: bool = False  # centre the blocks on every listing of `features` before each validation
    reweight: bool = False  # --epochs 0: scale the block weights by each input's label-free reliability
    steps: int | None = None  # stop after this many optimiser steps in total (smoke tests)
    progress: bool = True  # show tqdm progress bars


FC = TypeVar("FC", bound=Callable[..., Any])
FILE = click.Path(dir_okay=False, path_type=Path)


def _modalities(context: click.Context, option: click.Parameter, value: str) -> tuple[str, ...]:
    """``--modalities`` as a tuple of known names."""
    modalities = tuple(name.strip() for name in value.split(",") if name.strip())
    if set(modalities) - set(MODALITIES) or not modalities:
        raise click.BadParameter(f"{value!r}: choose from {', '.join(MODALITIES)}", context, option)
    return modalities


def _override(name: str, kind: Any, text: str, default: str | None = None) -> Callable[[FC], FC]:
    """An architecture option; unset, FusionConfig's default (or ``default``, when given) applies."""
    shown = default or str(getattr(FusionConfig, name))
    return click.option(f"--{name.replace('_', '-')}", type=kind, help=f"{text} (default: {shown})")


OPTIONS = (
    click.option(
        "--features", type=FILE, required=True, help="Cached features (.npz written by `toyfuse features`)."
    ),
    click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        required=True,
        help="Output folder for checkpoints, history and config.",
    ),
    click.option(
        "--schema",
        type=FILE,
        default=TrainParams.schema,
        help="embedding_index.yaml; the vector dims come from here.",
    ),
    click.option(
        "--epochs",
        type=click.IntRange(0),
        default=TrainParams.epochs,
        help="Most epochs (one epoch = every training product once, as a pair of listings); 0 with --init "
        "and --recentre and/or --reweight: only adapt the starting model.",
    ),
    click.option(
        "--batch-products",
        type=int,
        default=TrainParams.batch_products,
        help="Products per batch; each contributes two listings (and one query).",
    ),
    click.option("--lr", type=float, default=TrainParams.lr, help="Peak AdamW learning rate."),
    click.option(
        "--weight-decay",
        type=float,
        default=TrainParams.weight_decay,
        help="AdamW weight decay on matrices (not on norms, biases, logit scale).",
    ),
    click.option(
        "--warmup-steps",
        type=int,
        default=TrainParams.warmup_steps,
        help="Linear warm-up steps before the cosine decay.",
    ),
    click.option("--grad-clip", type=float, default=TrainParams.grad_clip, help="Max gradient norm."),
    click.option(
        "--patience",
        type=int,
        default=TrainParams.patience,
        help="Stop after this many epochs without a better validation score.",
    ),
    click.option("--seed", type=int, default=TrainParams.seed, help="Seeds torch, numpy and random."),
    click.option(
        "--split-seed",
        type=int,
        default=TrainParams.split_seed,
        help="Seeds the product-level train/val/test split (`toyfuse eval` must use the same).",
    ),
    click.option(
        "--init",
        type=click.Path(exists=True, path_type=Path),
        help="Start from this checkpoint (best.pt) or exported model repository (e.g. triton_models) and "
        "keep its architecture: adapt the shipped model to a catalog.",
    ),
    click.option(
        "--recentre",
        is_flag=True,
        help="Blocks: centre each block on every listing of --features that has its input (no labels read) "
        "before each validation, so the checkpoints are centred on the catalog they will serve.",
    ),
    click.option(
        "--reweight",
        is_flag=True,
        help="Blocks, with --epochs 0: scale each input's block weight by its nearest-neighbour accuracy on "
        "--features, estimated from the inputs' agreement (no labels read), after any --recentre.",
    ),
    click.option(
        "--agreement-from",
        type=click.Path(exists=True, path_type=Path),
        help="--labels agreement, a second round: pair listings whose fused vectors under this checkpoint or "
        "repository are mutual nearest neighbours and whose photos or texts are too.",
    ),
    click.option("--steps", type=int, help="Stop after this many optimiser steps in total (smoke tests)."),
    click.option(
        "--triplet-weight",
        type=float,
        default=LossWeights.triplet,
        help="Weight of the batch-hard triplet term beside InfoNCE.",
    ),
    click.option(
        "--margin", type=float, default=LossWeights.margin, help="Triplet margin, in cosine similarity."
    ),
    click.option(
        "--query-weight",
        type=float,
        default=LossWeights.query,
        help="Weight of the text-query -> listing InfoNCE term.",
    ),
    click.option(
        "--noise-rate",
        type=click.FloatRange(0.0, 1.0),
        default=TrainParams.noise_rate,
        help="Chance per present modality per view of showing another training listing's vector instead.",
    ),
    click.option(
        "--noisy-reviews-rate",
        type=click.FloatRange(0.0, 1.0),
        default=TrainParams.noisy_reviews_rate,
        help="Chance per batch that every listing shows another training listing's reviews.",
    ),
    click.option(
        "--labels",
        type=click.Choice(get_args(LabelMode)),
        default=TrainParams.labels,
        help="Positives: listings of one product, listings sharing a weak key (GTIN, brand + model number, "
        "parent_asin; the rest as none), agreement: listings whose photos and texts are both mutual nearest "
        "neighbours (the rest as none), or none: two views of one listing (product ids unused).",
    ),
    click.option(
        "--val-labels",
        type=click.Choice(get_args(ValLabelMode)),
        default=TrainParams.val_labels,
        help="Validation by product; agreement: by the pairs of --labels agreement found among the "
        "validation listings; none: a listing's text-only view retrieves its image/video view (attention "
        "fusion only).",
    ),
    click.option(
        "--view-noise",
        type=click.FloatRange(0.0),
        default=ViewAugment.noise,
        help="Views of one listing: gaussian noise on each vector, relative to its RMS.",
    ),
    click.option(
        "--view-dim-dropout",
        type=click.FloatRange(0.0, 1.0, max_open=True),
        default=ViewAugment.dim_dropout,
        help="Views of one listing: chance that each vector dimension is zeroed.",
    ),
    click.option(
        "--view-photo-keep",
        type=click.FloatRange(0.0, 1.0),
        default=ViewAugment.photo_keep,
        help="Views of one listing: chance that each photo is pooled into the image (one at least).",
    ),
    click.option(
        "--modalities",
        default=",".join(MODALITIES),
        callback=_modalities,
        help=f"Inputs the model may see: a comma-separated subset of {','.join(MODALITIES)}.",
    ),
    click.option(
        "--no-category-batches",
        is_flag=True,
        help="Batch products at random instead of by category (no hard in-batch negatives).",
    ),
    click.option("--no-progress", is_flag=True, help="Hide progress bars."),
    _override("shared_dim", int, "Width of the fused space and of every token.", "the schema's fused dims"),
    _override("hidden_dim", int, "Hidden width of each modality's projection MLP."),
    _override("layers", int, "Transformer layers over the modality tokens before attention pooling."),
    _override("heads", int, "Attention heads of the token layers."),
    _override("dropout", float, "Dropout inside the projections and token layers."),
    _override("modality_dropout", float, "Chance that each present modality is hidden from a training view."),
    _override("temperature", float, "Initial InfoNCE temperature (learned)."),
    _override("video_pooling", click.Choice(get_args(VideoPoolingKind)), "Temporal pooling of video frames."),
    _override(
        "fusion_kind",
        click.Choice(get_args(FusionKind)),
        "blocks: a block of the fused vector per modality; attention: tokens mixed in one space.",
    ),
    _override("gate_scale", float, "Blocks: input weights are softmax(gate_scale * logits)."),
    _override(
        "center_blocks", bool, "Blocks: subtract each block's mean over the listings that have its input."
    ),
)


def train_options(command: FC) -> FC:
    """Declare every option of ``toyfuse train`` on a click command (in ``--help`` order)."""
    for option in reversed(OPTIONS):
        command = option(command)
    return command


def from_options(options: dict[str, Any]) -> tuple[TrainParams, dict[str, Any]]:
    """Turn the parsed options of ``toyfuse train`` into run parameters and FusionConfig overrides."""
    params = TrainParams(
        features=options["features"],
        out_dir=options["out"],
        schema=options["schema"],
        epochs=options["epochs"],
        batch_products=options["batch_products"],
        lr=options["lr"],
        weight_decay=options["weight_decay"],
        warmup_steps=options["warmup_steps"],
        grad_clip=options["grad_clip"],
        patience=options["patience"],
        seed=options["seed"],
        split_seed=options["split_seed"],
        modalities=options["modalities"],
        group_by_category=not options["no_category_batches"],
        loss=LossWeights(
            triplet=options["triplet_weight"], margin=options["margin"], query=options["query_weight"]
        ),
        noise_rate=options["noise_rate"],
        noisy_reviews_rate=options["noisy_reviews_rate"],
        labels=options["labels"],
        val_labels=options["val_labels"],
        augment=ViewAugment(
            noise=options["view_noise"],
            dim_dropout=options["view_dim_dropout"],
            photo_keep=options["view_photo_keep"],
        ),
        init=options["init"],
        agreement_from=options["agreement_from"],
        recentre=options["recentre"],
        reweight=options["reweight"],
        steps=options["steps"],
        progress=not options["no_progress"],
    )
    overrides = {name: options[name] for name in ARCHITECTURE_FLAGS if options[name] is not None}
    return params, overrides
