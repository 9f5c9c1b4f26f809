"""The ``toyfuse`` command line: thin wrappers that build Settings and call the service."""

import asyncio
import json
import sys
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import click
from click.utils import make_default_short_help

from stream import stack
from stream.config import Settings
from stream.errors import DeadLetterReason, FeatureServiceError

if TYPE_CHECKING:
    from stream.rollout.registry import RolloutState

# Commands whose module imports torch (seconds) load on first use; the summary here keeps --help fast.
LAZY_COMMANDS = {
    "train": (
        "stream.train.main",
        "Train video pooling and fusion on cached features; keep the best epoch by validation.",
    ),
    "eval": (
        "stream.train.evaluate",
        "Retrieval metrics per modality, early concatenation and learned fusion, every catalog side by side.",
    ),
    "adaptation": (
        "stream.train.adaptation",
        "Adapting the served fusion to a catalog over several splits: zero-shot, label-free, supervised.",
    ),
    "export": (
        "stream.train.gate",
        "Gate a trained checkpoint on the validation split, then write it into the Triton model repository.",
    ),
    "bench": (
        "stream.bench.command",
        "Throughput (ceiling / naive / pipeline), freshness under load and the vector index, in one run.",
    ),
    "evalset": (
        "stream.evalsets.command",
        "Evaluation catalogs built from real material (never used to train the shipped model).",
    ),
    "status": (
        "stream.status.command",
        "One screen: servers and models up, lag, throughput, freshness, dead letters, model version.",
    ),
    "monitoring": (
        "stream.monitoring.command",
        "Check the Grafana dashboards and the alert rules against the running Prometheus.",
    ),
}


class Toyfuse(click.Group):
    """The root group: prints a FeatureServiceError of any command as one line on stderr and exits 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            self.add_command(import_module(LAZY_COMMANDS[cmd_name][0]).command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        with formatter.section("Commands"):
            formatter.write_dl([(name, self._summary(name, limit)) for name in names])

    def _summary(self, name: str, limit: int) -> str:
        if name in self.commands:
            return self.commands[name].get_short_help_str(limit)
        return make_default_short_help(LAZY_COMMANDS[name][1], limit)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FeatureServiceError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=Toyfuse)
@click.pass_context
def main(context: click.Context) -> None:
    """toyfuse: fresh multimodal embeddings for toy listings (Kafka -> Faust -> Triton -> Redis)."""
    if context.obj is None:
        context.obj = Settings()


def run(argv: list[str], settings: Settings | None = None) -> int:
    """Run the ``toyfuse`` command line in this process, as the shell would; for testable entry points.

    Args:
        argv: the arguments after ``toyfuse``, e.g. ``["train", "--features", "f.npz", "--out", "run"]``.
        settings: use these instead of reading Settings from the environment.

    Returns:
        The exit status: 0, or 1 after printing a FeatureServiceError.

    Raises:
        SystemExit: on invalid arguments, after click prints the reason (status 2).
    """
    try:
        status = main.main(argv, "toyfuse", standalone_mode=False, obj=settings)
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from exc
    return status if isinstance(status, int) else 0  # None: the command returned normally


@main.group("stack")
def stack_group() -> None:
    """Start, check and stop the local Kafka, Redis, Triton and Prometheus servers."""


@stack_group.command("up")
@click.pass_obj
def stack_up(settings: Settings) -> None:
    """Start every server that is not already healthy and create the topics."""
    stack.up(settings, echo=click.echo)


@stack_group.command("down")
@click.option("--wipe", is_flag=True, help="Also delete data, logs and downloaded jars.")
@click.pass_obj
def stack_down(settings: Settings, wipe: bool) -> None:
    """Stop every server (and the worker) started from this run folder."""
    stack.down(settings, echo=click.echo, wipe=wipe)


@stack_group.command("status")
@click.pass_obj
def stack_status(settings: Settings) -> None:
    """Show each server's pid, address and health; exit 1 if any is down."""
    statuses = stack.status(settings)
    width = max(len(server.name) for server in statuses)
    for server in statuses:
        state = "up" if server.healthy else "DOWN"
        click.echo(
            f"{server.name:<{width}} {state:<5} {server.address:<24} pid={server.pid or '-':<8} {server.detail}"
        )
    sys.exit(0 if all(server.healthy for server in statuses) else 1)


@main.group("store")
def store_group() -> None:
    """Maintain the keys toyfuse keeps in Redis."""


@store_group.command("migrate-review-keys")
@click.option(
    "--force",
    is_flag=True,
    help="Migrate without asking Kafka whether workers consume (only when every worker is known stopped).",
)
@click.pass_obj
def store_migrate_review_keys(settings: Settings, force: bool) -> None:
    """Move review keys of the single-server layout under their listing's hash tag; refused while any worker
    consumes as the app's group (a worker of the old layout would go on writing old keys)."""
    from stream.store.review_layout import migrate_configured_store
    from stream.worker.group import refuse_while_workers_run

    if not force:
        asyncio.run(refuse_while_workers_run(settings, "migrating the review keys"))
    moved = asyncio.run(migrate_configured_store(settings))
    click.echo(
        f"moved {moved.reviews} reviews, {moved.tombstones} deleted reviews' tombstones and {moved.aggregates} "
        f"review aggregates; copied {moved.listing_tombstones} deleted listings' times into their aggregates"
    )


@main.command()
@click.pass_obj
def worker(settings: Settings) -> None:
    """Run the Faust worker in the foreground (Ctrl-C stops it)."""
    from stream.worker.app import run_worker

    run_worker(settings)


@main.command()
@click.argument("listing_id")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON, vectors included.")
@click.pass_obj
def get(settings: Settings, listing_id: str, as_json: bool) -> None:
    """Show the stored embedding record of LISTING_ID (exit 1 when absent)."""
    from stream.store.client import SyncEmbeddingClient

    with SyncEmbeddingClient(settings) as client:
        record = client.get(listing_id)
    if as_json:
        click.echo(json.dumps(record.to_json(), ensure_ascii=False))
        return
    click.echo(f"{record.listing_id}  version {record.version}  model {record.model_version}")
    click.echo(f"updated {record.updated_at}  modalities {', '.join(record.modalities)}")
    click.echo(f"title: {record.metadata.get('title', '')}")
    for name, vector in record.vectors.items():
        head = ", ".join(f"{value:+.3f}" for value in vector[:4])
        click.echo(f"{name}: {vector.shape[0]}-d [{head}, ...]")


@main.command()
@click.argument("listing_id")
@click.option("-k", default=10, show_default=True, help="How many neighbours.")
@click.option("--category", help="Only listings in this category.")
@click.option("--max-price", type=float, help="Only listings priced at most this.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {listing_id, score}.")
@click.pass_obj
def similar(
    settings: Settings, listing_id: str, k: int, category: str | None, max_price: float | None, as_json: bool
) -> None:
    """List the listings most similar to LISTING_ID (cosine similarity)."""
    from stream.store.client import SyncEmbeddingClient

    with SyncEmbeddingClient(settings) as client:
        neighbours = client.similar(listing_id, k, category=category, max_price=max_price)
        records = client.get_many([n.listing_id for n in neighbours]) if not as_json else {}
    if as_json:
        click.echo(json.dumps([{"listing_id": n.listing_id, "score": n.score} for n in neighbours]))
        return
    for neighbour in neighbours:
        record = records[neighbour.listing_id]
        title = record.metadata.get("title", "") if record is not None else ""
        click.echo(f"{neighbour.score:6.3f}  {neighbour.listing_id:<12} {title}")


@main.command()
@click.argument(
    "events_files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--rate", type=float, help="Events per second (default: as fast as possible).")
@click.pass_obj
def replay(settings: Settings, events_files: tuple[Path, ...], rate: float | None) -> None:
    """Produce JSON-lines files of listing and review events, each to the topic its type names."""
    from stream.producer import produce_files

    count = asyncio.run(produce_files(settings, events_files, rate, progress=sys.stderr.isatty()))
    click.echo(f"produced {count} events")


def _since(context: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    from stream.deadletters.records import parse_since

    try:
        return None if value is None else parse_since(value, datetime.now(UTC))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


reason_option = click.option(
    "--reason",
    "reasons",
    multiple=True,
    type=click.Choice(get_args(DeadLetterReason)),
    help="Only dead letters with this reason (repeat for several; default: every reason).",
)
since_option = click.option(
    "--since",
    callback=_since,
    help="Only dead letters that failed at or after this: an age (30m, 2h, 7d), an RFC 3339 time "
    "(2025-03-01T12:00:00Z) or a date (UTC).",
)


@main.group("dlq")
def dlq_group() -> None:
    """List and replay dead-lettered events (the dead-letter topic, read from its beginning to now)."""


@dlq_group.command("list")
@reason_option
@since_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per dead letter, for scripts.")
@click.pass_obj
def dlq_list(
    settings: Settings, reasons: tuple[DeadLetterReason, ...], since: datetime | None, as_json: bool
) -> None:
    """Show the dead letters: time, reason, source topic[partition]@offset, key, message; then counts."""
    from stream.deadletters.reader import read_deadletters
    from stream.deadletters.records import Selection, format_line, format_summary, to_json

    readout = asyncio.run(read_deadletters(settings, progress=not as_json))
    letters = Selection(frozenset(reasons), since).apply(readout.letters)
    for letter in letters:
        click.echo(json.dumps(to_json(letter), ensure_ascii=False) if as_json else format_line(letter))
    if not as_json:
        click.echo(format_summary(letters))
    if readout.unreadable:
        click.echo(f"skipped {readout.unreadable} records that are not valid dead-letter records", err=True)


@dlq_group.command("replay")
@reason_option
@since_option
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; produce nothing.")
@click.pass_obj
def dlq_replay(
    settings: Settings, reasons: tuple[DeadLetterReason, ...], since: datetime | None, dry_run: bool
) -> None:
    """Produce each dead letter's original again to its source topic, once (a ledger skips replayed ones)."""
    from stream.deadletters.records import Selection, format_line
    from stream.deadletters.replay import replay_deadletters, summary

    selection = Selection(frozenset(reasons), since)
    report = asyncio.run(replay_deadletters(settings, selection, dry_run=dry_run, progress=True))
    for letter in report.plan.to_replay if dry_run else ():
        click.echo(f"would replay  {format_line(letter)}")
    for letter, problem in report.plan.not_replayable:
        click.echo(f"not replayable ({problem})  {format_line(letter)}")
    click.echo(summary(report))


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=7, show_default=True, help="Seed of every random choice.")
@click.option("--families", default=60, show_default=True, help="Distinct products.")
@click.option("--listings", default=200, show_default=True, help="Listings (2-5 per product).")
@click.option("--reviews", default=500, show_default=True, help="Review events, across all listings.")
@click.pass_obj
def catalog(settings: Settings, out_dir: Path, seed: int, families: int, listings: int, reviews: int) -> None:
    """Generate a synthetic catalog (events JSONL + media) deterministically into OUT_DIR."""
    from stream.catalog.generate import generate_catalog

    summary = generate_catalog(
        out_dir,
        seed=seed,
        families=families,
        listings=listings,
        reviews=reviews,
        media_base_url=settings.media_base_url,
    )
    click.echo(
        f"{summary.listings} listings of {summary.families} products, {summary.reviews} reviews, "
        f"{summary.images} images, {summary.videos} videos in {summary.out_dir}"
    )


@main.command()
@click.option(
    "--catalog",
    "catalog_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A catalog in the on-disk format (listings.jsonl, reviews.jsonl, products.json, media/).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Feature cache (.npz).")
@click.pass_obj
def features(settings: Settings, catalog_dir: Path, out: Path | None) -> None:
    """Encode a catalog with the served (frozen) encoders and cache the features for training."""
    from stream.train.features import default_features_path, extract_catalog_features

    path = out or default_features_path(settings.run_dir, catalog_dir)
    fresh = extract_catalog_features(catalog_dir, path, settings)
    click.echo(f"{'extracted' if fresh else 'cache up to date'}: {path}")


@main.group("import")
def import_group() -> None:
    """Convert public datasets into toyfuse events."""


@import_group.command("amazon")
@click.option(
    "--meta",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="meta_Toys_and_Games.jsonl (or .jsonl.gz) of Amazon Reviews 2023.",
)
@click.option(
    "--reviews",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Toys_and_Games.jsonl (or .jsonl.gz) of Amazon Reviews 2023.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for listings.jsonl and reviews.jsonl.",
)
@click.pass_obj
def import_amazon(settings: Settings, meta: Path, reviews: Path, out: Path) -> None:
    """Convert the Amazon Reviews 2023 Toys_and_Games files into listing and review events."""
    from stream.importers.amazon import convert_amazon

    summary = convert_amazon(meta, reviews, out, settings.schemas_dir)
    click.echo(
        f"wrote {summary.listings} listings to {summary.listings_path}, "
        f"{summary.reviews} reviews to {summary.reviews_path}"
    )
    click.echo(f"skipped {summary.skipped_listings} listings and {summary.skipped_reviews} reviews")


batch_option = click.option("--batch", default=256, show_default=True, help="Listings per Redis round trip.")


@main.group("rollout")
def rollout_group() -> None:
    """Roll out a new fusion model without downtime: shadow set, catch-up, compare, atomic switch."""


def _echo_state(state: "RolloutState") -> None:
    click.echo(
        f"rollout {state.version}: {state.phase}, {state.applied} listings applied by the scan, "
        f"{state.pending} changed listings waiting for the catch-up"
    )


@rollout_group.command("start")
@click.option(
    "--model-repository",
    "repository",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="An exported repository holding fusion/ and video_pooling/ (as `toyfuse export` writes).",
)
@batch_option
@click.pass_obj
def rollout_start(settings: Settings, repository: Path, batch: int) -> None:
    """Fuse every stored listing with the new model into a shadow set, then catch up (resumable)."""
    from stream.rollout import service

    _echo_state(asyncio.run(service.start(settings, repository, batch=batch, progress=True)))


@rollout_group.command("catch-up")
@batch_option
@click.pass_obj
def rollout_catch_up(settings: Settings, batch: int) -> None:
    """Apply the new model to the listings written since the rollout started."""
    from stream.rollout import service

    _echo_state(asyncio.run(service.catch_up(settings, batch=batch, progress=True)))


@rollout_group.command("status")
@click.pass_obj
def rollout_status(settings: Settings) -> None:
    """Show the registered rollout: its phase, the scan's progress and the listings waiting."""
    from stream.rollout import service

    _echo_state(asyncio.run(service.status(settings)))


@rollout_group.command("compare")
@click.option("--sample", default=200, show_default=True, help="Listings whose neighbours are compared.")
@click.option(
    "--features",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Cached features of an evaluation catalog (`toyfuse features`): adds Recall@1 of each model.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def rollout_compare(settings: Settings, sample: int, features: Path | None, as_json: bool) -> None:
    """Neighbour overlap@10 between live and shadow sets, and Recall@1 of each on an evaluation catalog."""
    from stream.rollout import service
    from stream.rollout.compare import format_table

    report = asyncio.run(service.compare(settings, sample=sample, features=features))
    click.echo(json.dumps(report) if as_json else format_table(report))


@rollout_group.command("adapt")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Model repository to export the adapted fusion into (not the served one).",
)
@click.option("--sample", default=5000, show_default=True, help="Stored listings to adapt on (at most).")
@click.option(
    "--reweight/--no-reweight",
    default=True,
    show_default=True,
    help="Also scale the block weights by each input's reliability, estimated without labels.",
)
@batch_option
@click.pass_obj
def rollout_adapt(settings: Settings, out: Path, sample: int, reweight: bool, batch: int) -> None:
    """Adapt the served fusion to the stored catalog without labels: recentre (and reweight) its blocks."""
    from stream.rollout import adapt

    done = asyncio.run(adapt.adapt(settings, out, sample=sample, batch=batch, reweight=reweight))
    click.echo(f"adapted the served fusion on {done.listings} stored listings: {done.exported.model_version}")
    if done.accuracies is not None:
        click.echo("estimated accuracy: " + ", ".join(f"{k} {v:.3f}" for k, v in done.accuracies.items()))
    click.echo(f"roll it out with `toyfuse rollout start --model-repository {out}`")


@rollout_group.command("switch")
@click.pass_obj
def rollout_switch(settings: Settings) -> None:
    """Make the shadow set and its version the live ones, atomically."""
    from stream.rollout import service

    version, previous = asyncio.run(service.switch(settings))
    click.echo(
        f"look-ups now answer in {version} (before: {previous or 'the unversioned set'}); serve the new model "
        "(export it into the Triton repository, restart Triton and the worker), then `toyfuse rollout cleanup`"
    )


@rollout_group.command("cleanup")
@batch_option
@click.pass_obj
def rollout_cleanup(settings: Settings, batch: int) -> None:
    """After the switch and the worker restart: make the new vectors the records' own, drop old sets."""
    from stream.rollout import service

    version = asyncio.run(service.cleanup(settings, batch=batch, progress=True))
    click.echo(f"rollout of {version} finished; the other versions' vector sets are dropped")


@rollout_group.command("abort")
@batch_option
@click.pass_obj
def rollout_abort(settings: Settings, batch: int) -> None:
    """Abandon a rollout that was not switched: drop its shadow set and shadow vectors."""
    from stream.rollout import service

    click.echo(f"rollout of {asyncio.run(service.abort(settings, batch=batch))} aborted")


@main.command()
@click.pass_obj
def demo(settings: Settings) -> None:
    """Bring the stack up, stream the sample catalog through it and show similar toys."""
    from stream.demo import run_demo

    run_demo(settings, echo=click.echo)


if __name__ == "__main__":
    main()
