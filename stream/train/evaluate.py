"""``toyfuse eval``: same-product retrieval per modality, early concatenation and fusion, catalogs side by side.

Each catalog is evaluated on one product split of its own, or whole (``--split all``: every listing is a
query); the summary puts every catalog's Recall@1 next to the others' and says how much of the gap to 1.0
left by the best other row (a single modality or early concatenation) the learned fusion closes.
"""

import copy
import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, cast

import click
import numpy as np
import torch
from numpy.typing import NDArray

from stream import cli
from stream.config import Settings
from stream.contracts.shapes import MODALITIES
from stream.errors import SettingsError
from stream.evalsets.command import evalsets_root
from stream.features.vectors import FloatArray, l2_normalize
from stream.model.fusion import INPUTS, ListingModel
from stream.model.loading import load_exported
from stream.train import cache
from stream.train.cache import FeatureSet
from stream.train.data import SPLITS, Split, split_rows, take
from stream.train.export import load_checkpoint
from stream.train.features import default_features_path, extract_catalog_features
from stream.train.headroom import oracle_weights, weighted_concat
from stream.train.plot import plot_report
from stream.train.ranking import retrieval_metrics
from stream.train.reliability import reweight
from stream.train.retrieval import embed, keep_modalities, listing_metrics, query_metrics, query_sources

TEXT_INPUTS = ("text", "text_multilingual")
PRESENCE = {
    "text": 0,
    "text_multilingual": 0,
    "image": 1,
    "video": 2,
    "reviews": 3,
}  # column in modality_mask
REMOVABLE = ("text", "image", "video", "reviews")
WHOLE = "all"  # --split all: the whole catalog, every listing a query
BASELINES = ("text", "text_multilingual", "image", "video", "reviews", "early_concat")
RECENTRED = "fusion_recentred"  # the fusion centred on the evaluated listings themselves (no labels read)
REWEIGHTED = "fusion_reweighted"  # recentred, then block weights scaled by label-free reliability there
ORACLE = (
    "oracle_weighting"  # single-modality cosines weighted to fit these listings' labels: a bound, not a model
)
SECOND_LANGUAGE = "zh"
TABLES = ("listing_to_listing", "query_to_listing", "missing_modality", "missing_modality_reweighted")


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
    recentred = recentred_on(model, features)
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
    reweighted = reweighted_on(recentred, features)
    for name, adapted in ((RECENTRED, recentred), (REWEIGHTED, reweighted)):
        if adapted is not None:
            listings[name] = embed(adapted, features.listing_batch())[0]
            queries[name] = embed(adapted, take(features.query_batch(), sources))[0]
    fitted = oracle_weights(singles, families)
    listings[ORACLE] = weighted_concat(singles, fitted)
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
        "missing_modality": missing_modality(model, features, fused),
        **(
            {"missing_modality_reweighted": missing_modality(reweighted, features, listings[REWEIGHTED])}
            if reweighted is not None
            else {}
        ),
        "present_only": {
            name: _present_only(v, families, present[:, PRESENCE[name]]) for name, v in singles.items()
        },
        f"{SECOND_LANGUAGE}_queries": _query_subset(
            {n: listings[n] for n in (*TEXT_INPUTS, "fusion")}, families, second
        )
        if len(second)
        else {},
        "oracle_weights": fitted,
        "mean_modality_weights": dict(zip(MODALITIES, weights.mean(axis=0).round(4).tolist(), strict=True)),
    }


def missing_modality(
    model: ListingModel, features: FeatureSet, all_fused: FloatArray
) -> dict[str, dict[str, float]]:
    """Fused retrieval with every modality (``all_fused``: the model's vectors of ``features``), without each
    one, and with text only."""
    families = list(features.families)
    fused = {"all": all_fused}
    fused |= {f"without_{name}": _fused_without(model, features, [name]) for name in REMOVABLE}
    fused["text_only"] = _fused_without(model, features, [name for name in REMOVABLE if name != "text"])
    return {name: listing_metrics(v, families) for name, v in fused.items()}


def reweighted_on(recentred: ListingModel | None, features: FeatureSet) -> ListingModel | None:
    """A copy of the recentred model with its block weights scaled by each input's reliability estimated on
    ``features`` (what ``--epochs 0 --recentre --reweight`` exports: label-free); None without a recentred
    model, or when the listings have fewer than three inputs to judge each other by."""
    if recentred is None:
        return None
    reweighted = copy.deepcopy(recentred)
    try:
        reweight(reweighted, features.listing_batch())
    except SettingsError:
        return None
    return reweighted


def recentred_on(model: ListingModel, features: FeatureSet) -> ListingModel | None:
    """A copy of ``model`` with its blocks centred on ``features`` (what ``toyfuse train --init ... --epochs 0
    --recentre`` exports: label-free, no training); None for a fusion without centred blocks."""
    config = model.config
    if config.fusion_kind != "blocks" or not config.center_blocks:
        return None
    recentred = copy.deepcopy(model)
    recentred.recentre(features.listing_batch())
    return recentred


def _present_only(
    vectors: FloatArray, families: Sequence[str], present: NDArray[np.bool_]
) -> dict[str, float]:
    """Retrieval among only the listings that have the modality."""
    rows = np.flatnonzero(present)
    return listing_metrics(vectors[rows], [families[r] for r in rows])


def load_model(checkpoint: Path | None, repository: Path) -> ListingModel:
    """The checkpoint's network when given, else the one exported into ``repository``."""
    return load_checkpoint(checkpoint) if checkpoint is not None else load_exported(repository)


def evaluated_rows(features: FeatureSet, split: str, split_seed: int) -> NDArray[np.int64]:
    """The rows of ``split`` (``all``: every row)."""
    if split == WHOLE:
        return np.arange(len(features), dtype=np.int64)
    return split_rows(list(features.families), split_seed)[cast(Split, split)]


def gap_closed(report: dict[str, Any], table: str = "listing_to_listing") -> dict[str, Any]:
    """Fusion's Recall@1 against the best other row: the share of that row's gap to 1.0 it closes."""
    rows = report[table]
    best = max((name for name in BASELINES if name in rows), key=lambda name: rows[name]["recall@1"])
    fused, other = rows["fusion"]["recall@1"], rows[best]["recall@1"]
    share = (fused - other) / (1.0 - other) if other < 1.0 else 0.0
    return {"best_other": best, "best_other_recall@1": other, "fusion_recall@1": fused, "gap_closed": share}


def run(
    catalogs: dict[str, FeatureSet],
    model: ListingModel,
    split: str,
    split_seed: int,
    out_dir: Path,
    whole: Collection[str] = (),
) -> dict[str, Any]:
    """Evaluate every catalog on ``split`` (those named in ``whole``: all of it); write ``eval.json`` and
    one ``eval-<catalog>.png`` each."""
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = {}
    for name, features in catalogs.items():
        chosen = WHOLE if name in whole else split
        rows = evaluated_rows(features, chosen, split_seed)
        report = {"split": chosen, "split_seed": split_seed, **evaluate(features.subset(rows), model)}
        report["summary"] = {
            table: gap_closed(report, table) for table in ("listing_to_listing", "query_to_listing")
        }
        plot_report(report, out_dir / f"eval-{name}.png")
        reports[name] = report
    (out_dir / "eval.json").write_text(json.dumps({"catalogs": reports}, indent=2) + "\n", encoding="utf-8")
    return reports


def built_evalsets(run_dir: Path) -> list[Path]:
    """The evaluation catalogs under ``<run_dir>/evalsets`` (see ``toyfuse evalset build``), by name.

    Raises:
        click.UsageError: none is built there.
    """
    root = evalsets_root(run_dir)
    folders = sorted(path.parent for path in root.glob("*/manifest.json"))
    if not folders:
        raise click.UsageError(f"no evaluation catalog under {root}; run `toyfuse evalset build`")
    return folders


def feature_sources(
    catalogs: Sequence[Path], features: Sequence[Path], settings: Settings
) -> dict[str, Path]:
    """Each evaluated catalog's feature cache by name: ``features`` files, and each catalog's own cache
    (extracted through Triton when stale).

    Raises:
        click.UsageError: neither is given, or two share a name.
    """
    paths = {path.stem: path for path in features}
    for catalog in catalogs:
        path = default_features_path(settings.run_dir, catalog)
        extract_catalog_features(catalog, path, settings)
        paths[catalog.resolve().name] = path
    if not paths:
        raise click.UsageError("give at least one --catalog or --features")
    if len(paths) < len(catalogs) + len(features):
        raise click.UsageError("two --catalog/--features share a name; name their folders or files apart")
    return paths


FOLDER = click.Path(file_okay=False, path_type=Path)
FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("eval", context_settings={"show_default": True})
@click.option(
    "--catalog",
    "catalogs",
    type=FOLDER,
    multiple=True,
    help="Catalog folder (its features are extracted through Triton); repeat for side-by-side tables.",
)
@click.option(
    "--features",
    "feature_files",
    type=FILE,
    multiple=True,
    help="Features cached by `toyfuse features`; repeatable, and mixable with --catalog.",
)
@click.option(
    "--evalsets",
    is_flag=True,
    help="Add every evaluation catalog built by `toyfuse evalset build`, each evaluated whole.",
)
@click.option("--checkpoint", type=FILE, help="Evaluate this checkpoint instead of the exported model.")
@click.option("--out", type=FOLDER, default=Path("eval"), help="Folder for eval.json and eval.png.")
@click.option(
    "--split",
    type=click.Choice((*SPLITS, WHOLE)),
    default="test",
    help="The product split to evaluate; `all`: the whole catalog (every listing a query).",
)
@click.option("--split-seed", type=int, default=0, help="Must match the training run's --split-seed.")
@click.pass_obj
def command(
    settings: Settings,
    catalogs: tuple[Path, ...],
    feature_files: tuple[Path, ...],
    evalsets: bool,
    checkpoint: Path | None,
    out: Path,
    split: str,
    split_seed: int,
) -> None:
    """Retrieval metrics per modality, early concatenation and learned fusion, every catalog side by side.

    Settings give the Triton address, the run dir and the model repository.
    """
    built = built_evalsets(settings.run_dir) if evalsets else []
    sources = feature_sources([*catalogs, *built], feature_files, settings)
    model = load_model(checkpoint, settings.model_repository)
    features = {name: cache.load(path) for name, path in sources.items()}
    reports = run(features, model, split, split_seed, out, whole={folder.name for folder in built})
    for name, report in reports.items():
        click.echo(f"\n== {name} ==" + format_tables(report))
    click.echo("\n" + format_side_by_side(reports))
    click.echo(f"wrote {out / 'eval.json'} and eval-<catalog>.png for each catalog")


def main(argv: list[str], settings: Settings) -> int:
    """Run ``toyfuse eval`` with ``argv`` and ``settings`` in this process.

    Returns:
        The exit status: 0, or 1 after printing a FeatureServiceError on stderr.

    Raises:
        SystemExit: on invalid arguments (click prints the reason).
    """
    return cli.run(["eval", *argv], settings)


def format_side_by_side(reports: dict[str, dict[str, Any]]) -> str:
    """Recall@1 of every method (rows) on every catalog (columns), per table, with fusion's gap closed."""
    names = list(reports)
    width = max(12, *(len(name) + 2 for name in names))
    lines = []
    for table in TABLES:
        methods = list(
            dict.fromkeys(method for report in reports.values() for method in report.get(table, {}))
        )
        lines += ["", f"{table}: recall@1", f"{'method':<18}" + "".join(f"{name:>{width}}" for name in names)]
        for method in methods:
            cells = [reports[name].get(table, {}).get(method, {}).get("recall@1") for name in names]
            lines.append(
                f"{method:<18}" + "".join(f"{'-' if c is None else f'{c:.3f}':>{width}}" for c in cells)
            )
        if table in reports[names[0]]["summary"]:
            gaps = [reports[name]["summary"][table]["gap_closed"] for name in names]
            lines.append(f"{'gap closed':<18}" + "".join(f"{gap:>{width}.2f}" for gap in gaps))
    return "\n".join(lines)


def format_tables(report: dict[str, Any]) -> str:
    """The report's tables as aligned text."""
    columns = ("recall@1", "recall@5", "recall@10", "ndcg@10", "mrr")
    lines = []
    for table in (name for name in TABLES if name in report):
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
