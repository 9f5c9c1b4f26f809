"""How far adapting the served fusion to one catalog gets, over several product splits.

For each split seed the same test split scores the served model zero-shot (with the label-free rows
`evaluate` adds: recentred, and recentred and reweighted on the test listings), the served model trained
on the catalog without labels (cross-modal agreement; weak keys where the catalog has them) and a model
trained from scratch on the catalog's product labels (supervised). A split of a catalog of some hundred
products holds about a hundred test listings: one query is .01 of Recall@1 and the spread between splits
is several times that, so the mean over splits is the figure to compare.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from stream.config import Settings
from stream.contracts.index import IndexSchema
from stream.model.fusion import FusionConfig
from stream.model.loading import load_exported
from stream.train import cache
from stream.train.agreement import NoAgreementPairs
from stream.train.cache import FeatureSet
from stream.train.data import LabelMode
from stream.train.evaluate import RECENTRED, REWEIGHTED, evaluate, evaluated_rows
from stream.train.export import load_checkpoint
from stream.train.main import train
from stream.train.params import TrainParams, ValLabelMode

SERVED = "served"
REFERENCE = "supervised/fusion"  # the row every other is compared with
FUSED_ROWS = ("fusion", RECENTRED, REWEIGHTED)  # the rows of each trained model
DEFAULT_SPLITS = 5


@dataclass(frozen=True)
class Method:
    """One way of training on the catalog."""

    name: str
    labels: LabelMode  # what makes two training listings positives
    val_labels: ValLabelMode  # what early stopping counts as a hit
    from_served: bool  # start from the served model (adaptation), not from scratch


METHODS = (
    Method("agreement", "agreement", "agreement", from_served=True),
    Method("weak", "weak", "agreement", from_served=True),
    Method("supervised", "product", "product", from_served=False),
)


def methods_for(features: FeatureSet) -> tuple[Method, ...]:
    """The methods that can train on ``features``: weak keys only where some listing has one."""
    has_keys = any(features.weak_keys)
    return tuple(method for method in METHODS if method.labels != "weak" or has_keys)


def recall_rows(report: dict[str, Any], prefix: str, names: Sequence[str] | None = None) -> dict[str, Any]:
    """``prefix/<row>``: listing -> listing Recall@1 of each row of an :func:`evaluate` report (``names``, or
    all of them) and text query -> listing Recall@1 where that table has the row (pure)."""
    listings, queries = report["listing_to_listing"], report["query_to_listing"]
    return {
        f"{prefix}/{name}": {
            "listing_recall@1": listings[name]["recall@1"],
            "query_recall@1": queries[name]["recall@1"] if name in queries else None,
        }
        for name in (names if names is not None else listings)
        if name in listings
    }


def summarise(per_split: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each row's listing Recall@1 on every split that has it, its mean, that mean over the supervised
    fusion's mean on the same splits, and the mean text query Recall@1 where the row has one (pure)."""
    names = list(dict.fromkeys(name for rows in per_split.values() for name in rows))
    summary = {}
    for name in names:
        splits = [rows for rows in per_split.values() if name in rows]
        listing = [rows[name]["listing_recall@1"] for rows in splits]
        reference = [rows[REFERENCE]["listing_recall@1"] for rows in splits if REFERENCE in rows]
        queries = [q for rows in splits if (q := rows[name].get("query_recall@1")) is not None]
        mean = sum(listing) / len(listing)
        reference_mean = sum(reference) / len(reference) if len(reference) == len(splits) else 0.0
        summary[name] = {
            "by_split": listing,
            "mean": round(mean, 4),
            "over_supervised": round(mean / reference_mean, 4) if reference_mean else None,
            "query_mean": round(sum(queries) / len(queries), 4) if queries else None,
        }
    return summary


def study(
    features: FeatureSet,
    features_path: Path,
    repository: Path,
    split_seeds: Sequence[int],
    out_dir: Path,
    train_params: Callable[..., TrainParams] = TrainParams,
) -> dict[str, Any]:
    """Evaluate the served model and train and evaluate every method, on each split; write
    ``adaptation.json`` into ``out_dir`` (each run's checkpoints under ``split-<seed>/<method>``). A run
    whose validation split holds no agreement pair is skipped, and listed with the reason.

    Args:
        features: the catalog's cached features (read from ``features_path``).
        features_path: where they were read, recorded in each training run.
        repository: the model repository whose exported fusion is served (the starting model).
        split_seeds: the product splits to measure on.
        out_dir: where the runs and the report go.
        train_params: builds each run's :class:`TrainParams` from its keyword arguments (tests shorten it).
    """
    served = load_exported(repository)
    per_split: dict[str, dict[str, dict[str, Any]]] = {}
    skipped: list[dict[str, Any]] = []  # runs that could not validate (no agreement pair), with the reason
    for seed in split_seeds:
        test = features.subset(evaluated_rows(features, "test", seed))
        rows = recall_rows(evaluate(test, served), SERVED)
        for method in methods_for(features):
            params = train_params(
                features_path,
                out_dir / f"split-{seed}" / method.name,
                split_seed=seed,
                labels=method.labels,
                val_labels=method.val_labels,
                init=repository if method.from_served else None,
            )
            config = (
                served.config
                if method.from_served
                else FusionConfig.from_schema(IndexSchema.from_yaml(params.schema))
            )
            try:
                trained = load_checkpoint(train(params, config, features).checkpoint)
            except NoAgreementPairs as exc:
                skipped.append({"split_seed": seed, "method": method.name, "reason": str(exc)})
                continue
            rows |= recall_rows(evaluate(test, trained), method.name, FUSED_ROWS)
        per_split[str(seed)] = rows
    report = {
        "features": str(features_path),
        "listings": len(features),
        "split_seeds": list(split_seeds),
        "per_split": per_split,
        "skipped": skipped,
        "summary": summarise(per_split),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "adaptation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def format_summary(summary: dict[str, dict[str, Any]]) -> str:
    """One line per row: listing -> listing Recall@1 on each split, its mean and its ratio to supervised, and
    the mean text query -> listing Recall@1 (pure)."""
    width = max(len(name) for name in summary)
    lines = []
    for name, row in summary.items():
        splits = " ".join(f"{value:.3f}" for value in row["by_split"])
        ratio = f"  {row['over_supervised']:.2f} x supervised" if row["over_supervised"] is not None else ""
        query = f"  query {row['query_mean']:.3f}" if row["query_mean"] is not None else ""
        lines.append(f"{name:<{width}}  {splits}  mean {row['mean']:.3f}{ratio}{query}")
    return "\n".join(lines)


@click.command("adaptation", context_settings={"show_default": True})
@click.option(
    "--features",
    "features_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="The catalog's features, cached by `toyfuse features`.",
)
@click.option(
    "--splits", type=click.IntRange(1), default=DEFAULT_SPLITS, help="Product splits (seeds 0..N-1)."
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Runs and adaptation.json."
)
@click.pass_obj
def command(settings: Settings, features_path: Path, splits: int, out: Path) -> None:
    """Adapting the served fusion to a catalog over several splits: zero-shot, label-free, supervised.

    Each split's test listings score the served model, the served model trained on the catalog without
    labels (agreement; weak keys where it has them) and a model trained on its product labels.
    """
    report = study(cache.load(features_path), features_path, settings.model_repository, range(splits), out)
    click.echo(format_summary(report["summary"]))
    for run in report["skipped"]:
        click.echo(f"skipped {run['method']} on split {run['split_seed']}: {run['reason']}")
    click.echo(f"wrote {out / 'adaptation.json'}")
