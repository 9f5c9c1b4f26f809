"""``toyfuse eval``: same-product retrieval on a test split, per modality, early concatenation and fusion."""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from numpy.typing import NDArray

from stream import cli
from stream.config import Settings
from stream.contracts.shapes import MODALITIES
from stream.features.vectors import FloatArray, l2_normalize
from stream.model.fusion import INPUTS, ListingModel
from stream.model.loading import load_exported
from stream.train import cache
from stream.train.cache import FeatureSet
from stream.train.data import SPLITS, Split, split_rows, take
from stream.train.export import load_checkpoint
from stream.train.features import default_features_path, extract_catalog_features
from stream.train.plot import plot_report
from stream.train.ranking import retrieval_metrics
from stream.train.retrieval import embed, keep_modalities, listing_metrics, query_metrics, query_sources

TEXT_INPUTS = ("text", "text_multilingual")
PRESENCE = {
    "text": 0,
    "text_multilingual": 0,
    "image": 1,
    "video": 2,
    "reviews": 3,
}  # column in modality_mask
REMOVABLE = ("image", "video", "reviews")
SECOND_LANGUAGE = "zh"


@torch.inference_mode()
def modality_vectors(features: FeatureSet, model: ListingModel) -> dict[str, FloatArray]:
    """Each listing's unit vector per fusion input (video pooled by the trained model); zeros where absent."""
    batch = features.listing_batch()
    video = model.eval().video_pooling(batch.frames, batch.frame_mask).numpy()
    raw = {
        "text": features.text,
        "text_multilingual": features.text_multilingual,
        "image": features.image,
        "video": video,
        "reviews": features.reviews,
    }
    return {
        name: l2_normalize(raw[name]) * features.modality_mask[:, PRESENCE[name], None] for name in INPUTS
    }


def early_concat(vectors: dict[str, FloatArray], dims: dict[str, int]) -> FloatArray:
    """Early fusion: unit per-modality vectors side by side (zeros where absent), normalised."""
    rows = len(next(iter(vectors.values())))
    parts = [vectors.get(name, np.zeros((rows, dims[name]), np.float32)) for name in INPUTS]
    return l2_normalize(np.concatenate(parts, axis=1))


def _query_subset(
    vectors: dict[str, FloatArray], families: Sequence[str], rows: NDArray[np.int64]
) -> dict[str, Any]:
    """Listing retrieval with only ``rows`` as queries (all listings stay candidates)."""
    excluded = np.zeros((len(rows), len(families)), dtype=bool)
    excluded[np.arange(len(rows)), rows] = True
    return {
        name: retrieval_metrics(v[rows], [families[r] for r in rows], v, families, excluded)
        for name, v in vectors.items()
    }


def _fused_without(model: ListingModel, features: FeatureSet, removed: Sequence[str]) -> FloatArray:
    kept = [name for name in MODALITIES if name not in removed]
    return embed(model, keep_modalities(features.listing_batch(), kept))[0]


def _coverage(features: FeatureSet) -> dict[str, float]:
    return {name: float(features.modality_mask[:, i].mean()) for i, name in enumerate(MODALITIES)}


def evaluate(features: FeatureSet, model: ListingModel) -> dict[str, Any]:
    """Every table of the report on one set of listings (normally the test split)."""
    families = list(features.families)
    singles = modality_vectors(features, model)
    dims = {name: vector.shape[1] for name, vector in singles.items()}
    fused, weights = embed(model, features.listing_batch())
    listings = {**singles, "early_concat": early_concat(singles, dims), "fusion": fused}
    sources = query_sources(features)
    query_singles = {
        "text": l2_normalize(features.query_text[sources]),
        "text_multilingual": l2_normalize(features.query_text_multilingual[sources]),
    }
    queries = {
        **query_singles,
        "early_concat": early_concat(query_singles, dims),
        "fusion": embed(model, take(features.query_batch(), sources))[0],
    }
    missing = {f"without_{name}": _fused_without(model, features, [name]) for name in REMOVABLE}
    missing["text_only"] = _fused_without(model, features, REMOVABLE)
    second = np.flatnonzero(np.char.startswith(features.locales.astype(str), SECOND_LANGUAGE)).astype(
        np.int64
    )
    present = features.modality_mask > 0
    return {
        "listings": len(features),
        "products": len(set(families)),
        "coverage": _coverage(features),
        "listing_to_listing": {name: listing_metrics(v, families) for name, v in listings.items()},
        "query_to_listing": {
            name: query_metrics(q, sources, listings[name], families) for name, q in queries.items()
        },
        "missing_modality": {"all": listing_metrics(fused, families)}
        | {name: listing_metrics(v, families) for name, v in missing.items()},
        "present_only": {
            name: _present_only(v, families, present[:, PRESENCE[name]]) for name, v in singles.items()
        },
        f"{SECOND_LANGUAGE}_queries": _query_subset(
            {n: listings[n] for n in (*TEXT_INPUTS, "fusion")}, families, second
        )
        if len(second)
        else {},
        "mean_modality_weights": dict(zip(MODALITIES, weights.mean(axis=0).round(4).tolist(), strict=True)),
    }


def _present_only(
    vectors: FloatArray, families: Sequence[str], present: NDArray[np.bool_]
) -> dict[str, float]:
    """Retrieval among only the listings that have the modality."""
    rows = np.flatnonzero(present)
    return listing_metrics(vectors[rows], [families[r] for r in rows])


def load_model(checkpoint: Path | None, repository: Path) -> ListingModel:
    """The checkpoint's network when given, else the one exported into ``repository``."""
    return load_checkpoint(checkpoint) if checkpoint is not None else load_exported(repository)


def run(
    features: FeatureSet, model: ListingModel, split: Split, split_seed: int, out_dir: Path
) -> dict[str, Any]:
    """Evaluate one split and write ``eval.json`` and ``eval.png`` into ``out_dir``."""
    rows = split_rows(list(features.families), split_seed)[split]
    report = {"split": split, "split_seed": split_seed, **evaluate(features.subset(rows), model)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot_report(report, out_dir / "eval.png")
    return report


def features_path(catalog: Path | None, features: Path | None, settings: Settings) -> Path:
    """The feature cache to evaluate: ``features``, or the catalog's (extracted through Triton when stale).

    Raises:
        click.UsageError: not exactly one of ``catalog`` and ``features`` is given.
    """
    if catalog is None and features is not None:
        return features
    if catalog is None or features is not None:
        raise click.UsageError("give exactly one of --catalog and --features")
    path = default_features_path(settings.run_dir, catalog)
    extract_catalog_features(catalog, path, settings)
    return path


FOLDER = click.Path(file_okay=False, path_type=Path)
FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("eval", context_settings={"show_default": True})
@click.option("--catalog", type=FOLDER, help="Catalog folder (its features are extracted through Triton).")
@click.option("--features", type=FILE, help="Features cached by `toyfuse features` (instead of --catalog).")
@click.option("--checkpoint", type=FILE, help="Evaluate this checkpoint instead of the exported model.")
@click.option("--out", type=FOLDER, default=Path("eval"), help="Folder for eval.json and eval.png.")
@click.option("--split", type=click.Choice(SPLITS), default="test", help="The product split to evaluate.")
@click.option("--split-seed", type=int, default=0, help="Must match the training run's --split-seed.")
@click.pass_obj
def command(
    settings: Settings,
    catalog: Path | None,
    features: Path | None,
    checkpoint: Path | None,
    out: Path,
    split: Split,
    split_seed: int,
) -> None:
    """Retrieval metrics per modality, early concatenation and learned fusion on a catalog's test split.

    Give exactly one of --catalog and --features. Settings give the Triton address, the run dir and the
    model repository.
    """
    path = features_path(catalog, features, settings)
    report = run(cache.load(path), load_model(checkpoint, settings.model_repository), split, split_seed, out)
    click.echo(format_tables(report))
    click.echo(f"wrote {out / 'eval.json'} and {out / 'eval.png'}")


def main(argv: list[str], settings: Settings) -> int:
    """Run ``toyfuse eval`` with ``argv`` and ``settings`` in this process.

    Returns:
        The exit status: 0, or 1 after printing a FeatureServiceError on stderr.

    Raises:
        SystemExit: on invalid arguments (click prints the reason).
    """
    return cli.run(["eval", *argv], settings)


def format_tables(report: dict[str, Any]) -> str:
    """The report's tables as aligned text."""
    columns = ("recall@1", "recall@5", "recall@10", "ndcg@10", "mrr")
    lines = []
    for table in ("listing_to_listing", "query_to_listing", "missing_modality"):
        lines += [
            "",
            f"{table} ({report['split']} split, {report['listings']} listings)",
            f"{'method':<18}" + "".join(f"{c:>11}" for c in columns),
        ]
        lines += [
            f"{name:<18}" + "".join(f"{row[c]:>11.3f}" for c in columns)
            for name, row in report[table].items()
        ]
    return "\n".join(lines)
