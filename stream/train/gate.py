"""``toyfuse export`` behind a gate: the candidate must not lose to a baseline on the validation split."""

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import click
from safetensors import safe_open

from stream.config import Settings
from stream.errors import ExportRefused, SettingsError
from stream.model.fusion import INPUTS, ListingModel
from stream.model.loading import FUSION, WEIGHTS, load_exported
from stream.train import cache
from stream.train.data import split_rows
from stream.train.evaluate import evaluate
from stream.train.export import Exported, checkpoint_params, export, load_checkpoint, model_version
from stream.train.main import check_dims

Task = Literal["listing_to_listing", "query_to_listing"]
Decision = Literal["passed", "refused", "overridden"]
TASK_LABELS: dict[Task, str] = {
    "listing_to_listing": "listing->listing",
    "query_to_listing": "query->listing",
}
TOLERANCE_QUERIES = 1  # R@1 moves in steps of one query; one borderline rank flip is noise, two are a loss
METRIC = "recall@1"
SERVED = "served"
GATE_FILE = "gate.json"


@dataclass(frozen=True)
class Comparison:
    """The candidate fusion's Recall@1 against one baseline's, on the same validation queries."""

    task: Task
    baseline: str  # a single modality, "early_concat" or "served"
    candidate: float  # the candidate fusion's Recall@1
    reference: float  # the baseline's Recall@1
    queries: int  # queries behind both figures

    @property
    def behind(self) -> int:
        """Queries the baseline answers right at rank 1 beyond the candidate (negative: the candidate leads)."""
        return round((self.reference - self.candidate) * self.queries)

    @property
    def lost(self) -> bool:
        """The candidate trails the baseline by more than ``TOLERANCE_QUERIES`` queries."""
        return self.behind > TOLERANCE_QUERIES

    def describe(self) -> str:
        """The comparison in words, e.g. ``text (listing->listing R@1 0.611 vs 1.000, 7 of 18 queries behind)``."""
        return (
            f"{self.baseline} ({TASK_LABELS[self.task]} R@1 {self.candidate:.3f} vs {self.reference:.3f}, "
            f"{self.behind} of {self.queries} queries behind)"
        )


def comparisons(candidate: dict[str, Any], served: dict[str, Any] | None) -> list[Comparison]:
    """The gate's checks on two :func:`~stream.train.evaluate.evaluate` reports of the same listings.

    Args:
        candidate: the report of the model to export.
        served: the report of the model now served, or None when there is none to compare with.

    Returns:
        listing->listing against each single modality and early concatenation, then (with ``served``)
        listing->listing and query->listing against the served fusion.
    """
    listing = candidate["listing_to_listing"]
    checks = [_versus("listing_to_listing", name, listing["fusion"], listing[name]) for name in INPUTS]
    checks.append(_versus("listing_to_listing", "early_concat", listing["fusion"], listing["early_concat"]))
    if served is not None:
        checks += [_versus(t, SERVED, candidate[t]["fusion"], served[t]["fusion"]) for t in get_args(Task)]
    return checks


def _versus(task: Task, baseline: str, fusion: dict[str, float], reference: dict[str, float]) -> Comparison:
    return Comparison(task, baseline, fusion[METRIC], reference[METRIC], int(fusion["queries"]))


def format_table(checks: list[Comparison]) -> str:
    """The comparisons as aligned text, one line each."""
    header = f"{'task':<18}{'baseline':<19}{'fusion':>8}{'baseline':>10}{'behind':>8}  result"
    rows = [
        f"{TASK_LABELS[c.task]:<18}{c.baseline:<19}{c.candidate:>8.3f}{c.reference:>10.3f}{c.behind:>8}  "
        + ("LOST" if c.lost else "ok")
        for c in checks
    ]
    return "\n".join([header, *rows])


@dataclass(frozen=True)
class Verdict:
    """What the gate measured on the validation split, and what it concluded."""

    checks: tuple[Comparison, ...]
    features: Path
    split_seed: int
    listings: int
    products: int
    served_version: str | None  # the model version of the served fusion it was compared with
    note: str | None  # why the served comparison was skipped

    @property
    def lost(self) -> tuple[Comparison, ...]:
        """The comparisons the candidate lost."""
        return tuple(check for check in self.checks if check.lost)


def judge(model: ListingModel, features: Path, split_seed: int, repository: Path) -> Verdict:
    """Evaluate ``model`` and the model served from ``repository`` on the validation split of ``features``.

    Raises:
        CatalogError: the features cannot be read or split.
        EmbeddingDimMismatch: the features do not have the sizes the model takes.
        SettingsError: the validation split has no product with two listings (nothing to compare).
    """
    listings = cache.load(features)
    check_dims(model.config, listings)
    val = listings.subset(split_rows(list(listings.families), split_seed)["val"])
    report = evaluate(val, model)
    if not report["listing_to_listing"]["fusion"].get("queries"):
        raise SettingsError(
            f"the validation split of {features} (split seed {split_seed}) has no product with two listings; "
            "pass other --features or --split-seed"
        )
    served, note = _served(repository, model)
    checks = comparisons(report, None if served is None else evaluate(val, served))
    version = None if served is None else _served_version(repository)
    return Verdict(tuple(checks), features, split_seed, report["listings"], report["products"], version, note)


def _served(repository: Path, candidate: ListingModel) -> tuple[ListingModel | None, str | None]:
    """The model served from ``repository`` when it takes the candidate's inputs, else why not."""
    try:
        served = load_exported(repository)
    except SettingsError:
        return None, f"no fusion is exported in {repository}, so the served comparison is skipped"
    if served.config.input_dims() != candidate.config.input_dims():
        return None, (
            f"the fusion served from {repository} takes inputs of other sizes "
            f"({served.config.input_dims()}), so the served comparison is skipped"
        )
    return served, None


def _served_version(repository: Path) -> str | None:
    with safe_open(str(repository / FUSION / "1" / WEIGHTS), "pt") as weights:
        metadata: dict[str, str] = weights.metadata() or {}
    return metadata.get("model_version")


def refusal(verdict: Verdict, record: Path) -> str:
    """The one-line reason of a refused export: each lost comparison with its figures, and the way out."""
    return (
        f"export refused, nothing written: on the validation split ({verdict.listings} listings, "
        f"{verdict.products} products) the candidate loses to "
        + "; ".join(check.describe() for check in verdict.lost)
        + f" (a loss: Recall@1 more than {TOLERANCE_QUERIES} query behind; figures in {record}); "
        "train a better model, or pass --force to export it anyway"
    )


def write_record(path: Path, verdict: Verdict, version: str, decision: Decision) -> None:
    """Write the gate's figures and decision as JSON."""
    record = {
        "model_version": version,
        "decision": decision,
        "lost_to": [check.describe() for check in verdict.lost],
        "features": str(verdict.features),
        "split": "val",
        "split_seed": verdict.split_seed,
        "listings": verdict.listings,
        "products": verdict.products,
        "metric": METRIC,
        "tolerance_queries": TOLERANCE_QUERIES,
        "served_version": verdict.served_version,
        "note": verdict.note,
        "comparisons": [
            asdict(check) | {"behind": check.behind, "lost": check.lost} for check in verdict.checks
        ],
    }
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def gated_export(
    checkpoint: Path,
    repository: Path,
    features: Path | None = None,
    split_seed: int | None = None,
    force: bool = False,
    today: date | None = None,
) -> tuple[Verdict, Exported]:
    """Export a checkpoint only if it loses to no baseline on validation; ``gate.json`` goes beside it.

    Args:
        checkpoint: a checkpoint written by ``toyfuse train``.
        repository: the Triton model repository, which also holds the model now served.
        features: the features to validate on (default: the ones the checkpoint was trained on).
        split_seed: the product split (default: the checkpoint's).
        force: export even when the candidate loses (recorded as ``overridden``).
        today: the date in the model version (default: today, UTC).

    Returns:
        the gate's verdict and what :func:`~stream.train.export.export` wrote.

    Raises:
        ExportRefused: the candidate loses a comparison and ``force`` is not set; nothing is exported.
        SettingsError: the checkpoint cannot be loaded or does not say which features it was trained on.
    """
    model = load_checkpoint(checkpoint)
    verdict = judge(model, *_validation_inputs(checkpoint, features, split_seed), repository)
    today = today or datetime.now(UTC).date()
    record = checkpoint.with_name(GATE_FILE)
    decision: Decision = "overridden" if verdict.lost and force else "refused" if verdict.lost else "passed"
    write_record(record, verdict, model_version(model, today), decision)
    if decision == "refused":
        raise ExportRefused(refusal(verdict, record))
    return verdict, export(checkpoint, repository, today)


def _validation_inputs(checkpoint: Path, features: Path | None, split_seed: int | None) -> tuple[Path, int]:
    """The features and split seed to validate on: the given ones, else those the checkpoint was trained on."""
    params = checkpoint_params(checkpoint)
    for option, key, given in (
        ("--features", "features", features),
        ("--split-seed", "split_seed", split_seed),
    ):
        if given is None and key not in params:
            raise SettingsError(f"{checkpoint} does not record its training {key}; pass {option}")
    return features or Path(params["features"]), params["split_seed"] if split_seed is None else split_seed


FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("export", context_settings={"show_default": True})
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A checkpoint written by `toyfuse train` (e.g. RUN/best.pt); the gate writes RUN/gate.json.",
)
@click.option(
    "--features", type=FILE, help="Features to validate on  [default: the checkpoint's training features]"
)
@click.option("--split-seed", type=int, help="Seed of the product split  [default: the checkpoint's]")
@click.option(
    "--force",
    is_flag=True,
    help="Export even if the model loses on the validation split: its listing->listing Recall@1 trails a "
    "single modality, early concatenation or the served fusion (also query->listing), by more than one query.",
)
@click.pass_obj
def command(
    settings: Settings, checkpoint: Path, features: Path | None, split_seed: int | None, force: bool
) -> None:
    """Gate a trained checkpoint on the validation split, then write it into the Triton model repository.

    A model that loses to a single modality, early concatenation or the served fusion is refused (exit 1,
    nothing written) unless --force; the figures and the decision go to gate.json beside the checkpoint.
    """
    verdict, exported = gated_export(checkpoint, settings.model_repository, features, split_seed, force)
    click.echo(
        f"export gate on the validation split of {verdict.features} (split seed {verdict.split_seed}, "
        f"{verdict.listings} listings, {verdict.products} products)"
    )
    click.echo(format_table(list(verdict.checks)))
    if verdict.note:
        click.echo(verdict.note)
    if verdict.lost:
        click.echo(
            "gate overridden by --force; the candidate loses to "
            + "; ".join(c.describe() for c in verdict.lost)
        )
    click.echo(
        f"exported {exported.model_version} ({exported.weight_bytes} bytes) to {settings.model_repository}; "
        f"gate record {checkpoint.with_name(GATE_FILE)}; "
        "restart Triton (toyfuse stack down && toyfuse stack up) to serve it"
    )
