"""`toyfuse bench`: every scenario against its ceiling and naive baseline, measured in one run on the local
stack; writes ``bench.json`` and plots."""

import asyncio
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import numpy as np
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from tqdm import tqdm
from tritonclient.grpc.aio import InferenceServerClient

from stream import stack
from stream.bench.encoders import EncoderWork, encoder_ceilings, work_items
from stream.bench.index import IndexPlan, index_work, run_index
from stream.bench.plots import plot_bench
from stream.bench.report import format_report
from stream.bench.runtimes import image_runtimes, runtime_items, text_runtimes
from stream.bench.stats import ratio
from stream.bench.throughput import (
    CONCURRENCIES,
    Embed,
    Item,
    PipelineRun,
    ceiling,
    combined_ceiling,
    combined_rates,
    combined_runs,
    handled_through,
    naive,
    stream_through,
)
from stream.bench.updates import update_costs
from stream.bench.workload import Event, bench_listings, deletions, encoder_inputs, review_burst
from stream.catalog.generate import CatalogSummary, generate_catalog
from stream.config import REPO_ROOT, Settings
from stream.contracts.index import BUILD_M_RANGE, MAX_BUILD_EF
from stream.contracts.shapes import IMAGE_SHAPE, INDEX
from stream.features.reviews import review_text
from stream.inference.listing import ListingEncoder, ListingInputs
from stream.inference.triton import TritonEncoder
from stream.producer import read_jsonl
from stream.retry import RetryPolicy
from stream.stack import media_server, redis_server, worker_process
from stream.stack.process import free_port
from stream.store.client import EmbeddingClient
from stream.store.encoder_cache import EncoderCache
from stream.store.listings import SearchEffort

SCENARIOS = ("text", "reviews", "multimodal", "updates", "freshness", "scale-out", "encoders", "index")
STREAMED = frozenset(SCENARIOS) - {"encoders", "index"}  # these need the worker; text is their reference
MEDIA_SCENARIOS = frozenset({"multimodal", "updates"})  # their listings carry the catalog's photos and videos
WARM_UP = 32  # listings streamed before anything is timed, so no model or connection is cold


@dataclass(frozen=True)
class BenchPlan:
    """How much each scenario does; the defaults take about ten minutes on two CPU cores."""

    scenarios: tuple[str, ...] = SCENARIOS
    text_listings: int = 600
    naive_listings: int = 100
    media_listings: int = (
        192  # six batches of 32; with 48 a run timed mostly the pipeline filling and draining
    )
    reviewed_listings: int = 300  # text listings that get a burst of reviews
    reviews_per_listing: int = 5
    update_rounds: int = 3  # full and price-only upserts of media_listings, timed this often each
    loads: tuple[float, ...] = (0.25, 0.5, 0.75)  # offered load as a share of the text pipeline's rate
    load_seconds: float = 20.0
    runtime_texts: int = 192  # texts each text-encoder runtime embeds in-process a round (torch: ~8 CPU s)
    runtime_photos: int = 64  # photos each image-encoder runtime embeds in-process a round
    runtime_rounds: int = 3
    throughput_rounds: int = 3  # alternating ceiling, naive and pipeline rounds per throughput scenario
    index: IndexPlan = field(default_factory=IndexPlan)


@dataclass(frozen=True)
class BenchResult:
    """What one run measured: the report, the freshness samples (seconds, by curve) and the listings it
    stored and deleted again at the end."""

    report: dict[str, Any]
    samples: dict[str, list[float]]
    listing_ids: list[str]


class Bench:
    """One benchmark run on a started stack and the catalog its listings are made from."""

    def __init__(self, settings: Settings, catalog: CatalogSummary, plan: BenchPlan) -> None:
        self.settings = settings
        self.catalog = catalog
        self.plan = plan
        self.run_id = uuid.uuid4().hex[:8]
        self.templates = list(read_jsonl(catalog.listings_path))
        self.review_templates = list(read_jsonl(catalog.reviews_path))
        self.retry = RetryPolicy.from_settings(settings)
        self.embedded: dict[str, list[str]] = {}  # by throughput scenario, the listings it stored
        self.deleted: list[str] = []
        self.samples: dict[str, list[float]] = {}

    def listings(self, phase: str, count: int, *, text_only: bool) -> list[Event]:
        """New listings for one phase (their ids start ``bench-<run_id>-``, which the clean-up looks for)."""
        return bench_listings(
            self.templates, f"{self.run_id}-{phase}", count, datetime.now(UTC), text_only=text_only
        )

    async def throughput(self, name: str, *, text_only: bool, count: int, naive_count: int) -> dict[str, Any]:
        """Ceiling, naive baseline and pipeline for one kind of listing, in ``plan.throughput_rounds``
        alternating rounds of new listings; each is reported as its median over the rounds."""
        ceilings, naives, runs = [], [], []
        for round_number in range(self.plan.throughput_rounds):
            events = self.listings(f"{name}{round_number}", count, text_only=text_only)
            inputs = encoder_inputs(events, self.catalog.out_dir / "media", REPO_ROOT / "schemas")
            async with InferenceServerClient(self.settings.triton_grpc_url) as client:
                encoder = ListingEncoder(client, INDEX, self.settings.triton_timeout_s, self.retry)
                top, base = await self.ceiling_and_naive(name, encoder.embed, inputs, naive_count)
            await self.forget_encoded()  # the photos of earlier runs' listings are cached
            with _bar(f"{name}: pipeline", len(events)) as bar:
                runs.append(await stream_through(self.settings, events, bar.update))
            ceilings.append(top)
            naives.append(base)
            self.embedded.setdefault(name, []).extend(event["listing_id"] for event in events)
        self.samples[f"{name}, as fast as possible"] = [s for run in runs for s in run.freshness_s()]
        return _compared(combined_ceiling(ceilings), combined_rates(naives), combined_runs(runs))

    async def reviews(self, listing_ids: Sequence[str]) -> dict[str, Any]:
        """A burst of ``reviews_per_listing`` new reviews on each of ``listing_ids`` (already stored)."""
        events = review_burst(
            listing_ids, self.review_templates, self.plan.reviews_per_listing, datetime.now(UTC)
        )
        texts = [review_text(event.get("title"), event.get("text")) for event in events]
        async with InferenceServerClient(self.settings.triton_grpc_url) as client:
            model = INDEX.vectors["reviews"]
            encoder = TritonEncoder(
                client, model.model or "", model.dims, self.settings.triton_timeout_s, self.retry
            )
            top, base = await self.ceiling_and_naive(
                "reviews", encoder.embed_texts, texts, self.plan.naive_listings
            )
        with _bar("reviews: pipeline", len(events)) as bar:
            pipeline = await handled_through(self.settings, events, self.settings.reviews_topic, bar.update)
        return _compared(top, base, pipeline)

    async def ceiling_and_naive(
        self, name: str, embed: Embed[Item], items: Sequence[Item], naive_count: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ceiling over ``items`` and the naive baseline over the first ``naive_count`` of them."""
        with _bar(f"{name}: ceiling", len(CONCURRENCIES) * len(items)) as bar:
            top = await ceiling(embed, items, self.settings.batch_size, bar.update)
        with _bar(f"{name}: naive", min(naive_count, len(items))) as bar:
            base = await naive(embed, items[:naive_count], bar.update)
        return top, base

    def encoder_inputs(self) -> list[ListingInputs]:
        """The texts and photos the encoders see for the catalog's listings."""
        events = bench_listings(
            self.templates, f"{self.run_id}-encoders", len(self.templates), datetime.now(UTC), text_only=False
        )
        return encoder_inputs(events, self.catalog.out_dir / "media", REPO_ROOT / "schemas")

    async def encoders(self, inputs: Sequence[ListingInputs]) -> dict[str, Any]:
        """Each encoder model's own ceiling, on the catalog's texts and the photos of its listings."""
        photos = [photo for item in inputs for photo in item.photos]
        work = EncoderWork(
            [item.text for item in inputs],
            np.stack(photos) if photos else np.zeros((0, *IMAGE_SHAPE), np.uint8),
            batch=self.settings.batch_size,
        )
        async with InferenceServerClient(self.settings.triton_grpc_url) as client:
            with _bar("encoders: ceilings", work_items(work)) as bar:
                return await encoder_ceilings(client, work, bar.update, self.settings.triton_timeout_s)

    def runtimes(self, inputs: Sequence[ListingInputs]) -> dict[str, Any]:
        """The text and image encoders' runtimes in-process (torch against ONNX) on the catalog's first items."""
        plan, repository = self.plan, self.settings.model_repository
        texts = [item.text for item in inputs][: plan.runtime_texts]
        photos = [photo for item in inputs for photo in item.photos][: plan.runtime_photos]
        batch, rounds = self.settings.batch_size, plan.runtime_rounds
        with _bar("encoders: runtimes", runtime_items(len(texts), len(photos), rounds)) as bar:
            found = {"text_encoder": text_runtimes(texts, repository, bar.update, batch=batch, rounds=rounds)}
            if photos:  # a catalog without photos has no image ceiling either
                found["image_encoder"] = image_runtimes(
                    np.stack(photos), repository, bar.update, batch=batch, rounds=rounds
                )
            return found

    async def scale_out(self, one_worker: float) -> dict[str, Any]:
        """Text-only listings through two workers sharing the topic's partitions, against ``one_worker``'s rate."""
        second = self.settings.model_copy(
            update={"run_dir": self.settings.run_dir / "bench-second-worker", "worker_web_port": free_port()}
        )
        await asyncio.to_thread(worker_process.start, second, lambda _: None)
        try:
            await self.warm_up("scale-out warm-up")  # also waits out the group's rebalance
            events = self.listings("scaleout", self.plan.text_listings, text_only=True)
            with _bar("two workers: pipeline", len(events)) as bar:
                run = await stream_through(self.settings, events, bar.update)
        finally:
            await asyncio.to_thread(worker_process.stop, second)
        pipeline = run.summary()
        return {
            "workers": 2,
            "partitions": self.settings.topic_partitions,
            "pipeline": pipeline,
            "over_one_worker": ratio(pipeline["per_s"], one_worker),
        }

    async def freshness(self, full_rate: float) -> dict[str, Any]:
        """Text-only listings offered at shares of ``full_rate`` for ``load_seconds`` each."""
        loads = []
        for share in self.plan.loads:
            offered = share * full_rate
            events = self.listings(
                f"load{share:g}", max(1, round(offered * self.plan.load_seconds)), text_only=True
            )
            with _bar(f"freshness at {offered:.1f}/s", len(events)) as bar:
                run: PipelineRun = await stream_through(
                    self.settings, events, bar.update, events_per_s=offered
                )
            self.samples[f"{offered:.1f}/s offered ({share:.0%})"] = run.freshness_s()
            loads.append({"share": share, "offered_per_s": offered, **run.summary()})
        return {"full_rate_per_s": full_rate, "loads": loads}

    async def forget_encoded(self) -> None:
        """Empty the shared encoder cache, so a pipeline run encodes what a ceiling run encodes."""
        redis = AsyncRedis.from_url(self.settings.redis_url)
        try:
            await EncoderCache(redis, INDEX).clear()
        finally:
            await redis.aclose()

    async def warm_up(self, what: str = "warm-up") -> None:
        """Stream a few listings untimed."""
        events = self.listings(what.replace(" ", "-"), WARM_UP, text_only=True)
        with _bar(what, len(events)) as bar:
            await stream_through(self.settings, events, bar.update)

    async def clean_up(self) -> None:
        """Delete every live listing whose id the run made (``bench-<run_id>-...``, copies included), through
        the pipeline, untimed."""
        redis, client = (
            AsyncRedis.from_url(self.settings.redis_url),
            EmbeddingClient.from_settings(self.settings),
        )
        try:
            pattern = INDEX.listing_key(f"bench-{self.run_id}-*")
            keys = [key.decode() async for key in redis.scan_iter(match=pattern, count=1000)]
            versions = await client.stored_versions([key.removeprefix(INDEX.listing_key("")) for key in keys])
        finally:
            await redis.aclose()
            await client.close()
        live = [{"listing_id": i, "version": v} for i, v in versions.items() if v is not None]
        gone = deletions(live, datetime.now(UTC))
        with _bar("deleting the benchmark listings", len(gone)) as bar:
            await stream_through(self.settings, gone, bar.update)
        self.deleted += [event["listing_id"] for event in gone]


def _compared(top: dict[str, Any], base: dict[str, Any], pipeline: dict[str, Any]) -> dict[str, Any]:
    return {
        "ceiling": top,
        "naive": base,
        "pipeline": pipeline,
        "pipeline_over_ceiling": ratio(pipeline["per_s"], top["per_s"]),
        "pipeline_over_naive": ratio(pipeline["per_s"], base["per_s"]),
    }


def _bar(what: str, total: int) -> Any:
    return tqdm(total=total, desc=what, unit="ev", leave=False)


async def run_bench(settings: Settings, catalog: CatalogSummary | None, plan: BenchPlan) -> BenchResult:
    """Every scenario of ``plan``: those that need the stack on the running stack and ``catalog`` (served
    by the media server; None when only the index is measured)."""
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(),
        "plan": asdict(plan),
        "settings": {
            "batch_size": settings.batch_size,
            "batch_window_s": settings.batch_window_s,
            "listing_batches_in_flight": settings.listing_batches_in_flight,
            "review_batches_in_flight": settings.review_batches_in_flight,
        },
    }
    samples: dict[str, list[float]] = {}
    deleted: list[str] = []
    if catalog is not None:
        bench = Bench(settings, catalog, plan)
        if STREAMED & set(plan.scenarios):
            await _streamed(bench, plan, report)
        if "encoders" in plan.scenarios:
            inputs = bench.encoder_inputs()  # photos decoded from the catalog's files once, for both
            report["encoders"] = await bench.encoders(inputs)
            report["runtimes"] = bench.runtimes(inputs)
        samples, deleted = bench.samples, bench.deleted
    if "index" in plan.scenarios:
        with (
            redis_server.scratch_server(settings, "bench-redis") as scratch,
            _bar("vector set", index_work(plan.index)) as bar,
        ):
            report["index"] = run_index(lambda: Redis.from_url(scratch.redis_url), plan.index, bar.update)
    return BenchResult(report, samples, deleted)


async def _streamed(bench: Bench, plan: BenchPlan, report: dict[str, Any]) -> None:
    """The scenarios that stream events through the pipeline; their listings are deleted afterwards."""
    settings = bench.settings
    await bench.warm_up()
    try:
        report["text"] = await bench.throughput(
            "text", text_only=True, count=plan.text_listings, naive_count=plan.naive_listings
        )
        if "reviews" in plan.scenarios:
            report["reviews"] = await bench.reviews(bench.embedded["text"][: plan.reviewed_listings])
        if "multimodal" in plan.scenarios:
            report["multimodal"] = await bench.throughput(
                "multimodal", text_only=False, count=plan.media_listings, naive_count=plan.media_listings // 3
            )
        if "freshness" in plan.scenarios:
            report["freshness"] = await bench.freshness(report["text"]["pipeline"]["per_s"])
        if "updates" in plan.scenarios:
            upserts = bench.listings("updates", plan.media_listings, text_only=False)
            tqdm.write(f"updates: {plan.update_rounds} rounds of full, then price-only upserts")
            report["updates"] = await update_costs(settings, upserts, rounds=plan.update_rounds)
        if "scale-out" in plan.scenarios:
            report["scale_out"] = await bench.scale_out(report["text"]["pipeline"]["per_s"])
    finally:
        await bench.clean_up()


def prepare(settings: Settings, echo: Callable[[str], None]) -> CatalogSummary:
    """Start the stack, the worker and the media server unless running; generate the sample catalog."""
    stack.up(settings, echo)
    if not worker_process.status(settings).healthy:
        worker_process.start(settings, echo)
    catalog = generate_catalog(settings.run_dir / "catalog", media_base_url=settings.media_base_url)
    if not media_server.status(settings).healthy:
        media_server.start(settings, echo)
    return catalog


def check_media_listings(plan: BenchPlan, catalog: CatalogSummary) -> None:
    """Refuse more media listings than the catalog has: later ones would repeat its photos and videos,
    which the encoder cache serves without encoding, so the pipeline would do less work than the ceiling.

    Raises:
        click.BadParameter: ``plan.media_listings`` exceeds ``catalog.listings`` and a scenario uses them.
    """
    if MEDIA_SCENARIOS & set(plan.scenarios) and plan.media_listings > catalog.listings:
        raise click.BadParameter(
            f"{plan.media_listings} is more than the sample catalog's {catalog.listings} listings; later ones "
            "would repeat its photos and videos, which the encoder cache serves without encoding them again, "
            "so the pipeline would look faster than it is. Pass at most that many",
            param_hint="--media-listings",
        )


def _shares(text: str) -> tuple[float, ...]:
    try:
        shares = tuple(float(part) for part in text.split(","))
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not a comma-separated list of numbers, e.g. 0.25,0.5,0.75"
        ) from exc
    if not shares or any(not 0 < share <= 2 for share in shares):
        raise click.BadParameter("each load share must be in (0, 2], e.g. 0.25,0.5,0.75")
    return shares


@click.command("bench", context_settings={"show_default": True})
@click.option(
    "--scenario",
    "scenarios",
    type=click.Choice(SCENARIOS),
    multiple=True,
    help="Run only these (repeatable; default: all).",
)
@click.option(
    "--listings",
    "text_listings",
    type=click.IntRange(1),
    default=BenchPlan.text_listings,
    help="Text-only listings for the ceiling and the pipeline.",
)
@click.option(
    "--naive-listings",
    type=click.IntRange(1),
    default=BenchPlan.naive_listings,
    help="Listings embedded one per call.",
)
@click.option(
    "--media-listings",
    type=click.IntRange(3),
    default=BenchPlan.media_listings,
    help="Listings with photos and video, each catalog listing's media once (at most its listings).",
)
@click.option(
    "--rounds",
    "throughput_rounds",
    type=click.IntRange(1),
    default=BenchPlan.throughput_rounds,
    help="Alternating rounds of ceiling, naive and pipeline for text-only and media listings (medians reported).",
)
@click.option(
    "--loads",
    default=",".join(f"{share:g}" for share in BenchPlan.loads),
    help="Offered loads for freshness, as shares of the text pipeline's rate.",
)
@click.option(
    "--load-seconds",
    type=click.FloatRange(1.0),
    default=BenchPlan.load_seconds,
    help="Seconds at each offered load.",
)
@click.option(
    "--index-size",
    type=click.IntRange(1000),
    default=IndexPlan.size,
    help="Vectors in the benchmark vector set.",
)
@click.option(
    "--quantization",
    "quantizations",
    type=click.Choice(IndexPlan.quantizations),
    multiple=True,
    help="Vector-set quantisations to measure (repeatable; default: all three).",
)
@click.option(
    "--build-ef",
    "build_efs",
    type=click.IntRange(1, MAX_BUILD_EF),
    multiple=True,
    help="VADD EF values to build each quantisation at (repeatable; default: the schema's search.build_ef, "
    f"{INDEX.search.build_ef}).",
)
@click.option(
    "--build-m",
    "build_ms",
    type=click.IntRange(*BUILD_M_RANGE),
    multiple=True,
    help="VADD M values (links per node) to build each quantisation with (repeatable; default: the schema's "
    f"search.build_m, {INDEX.search.build_m}).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-results"),
    help="Folder for bench.json and the plots.",
)
@click.pass_obj
def command(
    settings: Settings,
    scenarios: Sequence[str],
    text_listings: int,
    naive_listings: int,
    media_listings: int,
    throughput_rounds: int,
    loads: str,
    load_seconds: float,
    index_size: int,
    quantizations: tuple[str, ...],
    build_efs: tuple[int, ...],
    build_ms: tuple[int, ...],
    out: Path,
) -> None:
    """Throughput (ceiling / naive / pipeline), freshness under load and the vector index, in one run.

    Starts the local stack and a worker unless they run. Benchmark listings are deleted afterwards. The
    vector set is searched at several efforts; the served one is TOYFUSE_VSIM_EF and
    TOYFUSE_VSIM_FILTER_EF_PER_RESULT (times the results asked).
    """
    plan = BenchPlan(
        scenarios=tuple(scenarios) or SCENARIOS,
        text_listings=text_listings,
        naive_listings=min(naive_listings, text_listings),
        media_listings=media_listings,
        throughput_rounds=throughput_rounds,
        loads=_shares(loads),
        load_seconds=load_seconds,
        index=IndexPlan(
            size=index_size,
            dims=INDEX.vectors[INDEX.search.vector].dims,
            quantizations=quantizations or IndexPlan.quantizations,
            build_efs=build_efs or IndexPlan.build_efs,
            build_ms=build_ms or IndexPlan.build_ms,
            served=SearchEffort.from_settings(settings),
        ),
    )
    catalog = prepare(settings, click.echo) if set(plan.scenarios) - {"index"} else None
    if catalog is not None:
        check_media_listings(plan, catalog)
    result = asyncio.run(run_bench(settings, catalog, plan))
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result.report, indent=2) + "\n", encoding="utf-8")
    plots = plot_bench(result.report, result.samples, out)
    click.echo(format_report(result.report))
    click.echo(f"wrote {out / 'bench.json'} and {', '.join(path.name for path in plots)}")
