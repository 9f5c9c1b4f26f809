"""`toyfuse demo`: the sample catalog streamed through the real stack, end to end."""

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stream import stack
from stream.catalog.generate import CatalogSummary, generate_catalog
from stream.config import Settings
from stream.contracts.schemas import format_rfc3339
from stream.contracts.shapes import MODALITIES
from stream.errors import FeatureServiceError
from stream.monitoring.check import CheckReport, PrometheusApi, run_check
from stream.monitoring.queries import load_panel_queries, load_rule_expressions
from stream.monitoring.report import format_row, format_summary
from stream.producer import produce, produce_events, read_jsonl, reliable_producer, topic_for
from stream.stack import media_server, prometheus_server, worker_process
from stream.store.client import EmbeddingClient

Echo = Callable[[str], None]
POLL_S = 0.25
SHOWCASE = 3
NEIGHBOURS = 5
HOSTILE_SAMPLES = 2
MONITORING_WAIT_S = 15.0  # rates over a minute fade soon after the last event: check early
FIRST_SCRAPE_WAIT_S = 30.0
WORKER_SERIES = 'toyfuse_events_processed_total{job="toyfuse-worker"}'  # made with the pipelines


class DemoTimeout(FeatureServiceError):
    """The worker did not embed the catalog in time."""


@dataclass(frozen=True)
class DemoRun:
    """What one demo round produced and how long embedding took."""

    listings: int
    reviews: int
    seconds: float


def next_round(
    events: list[dict[str, Any]], stored: dict[str, int | None], now: datetime
) -> list[dict[str, Any]]:
    """Listing events to produce now (pure): versions above what is stored, so a rerun re-embeds everything,
    and ``occurred_at`` set to ``now``, so the event-time freshness the worker reports is that of a live
    marketplace, not the age of the sample catalog's fixed dates."""
    bumped = []
    for event in events:
        version = max(event["version"], (stored.get(event["listing_id"]) or 0) + 1)
        suffix = "" if version == event["version"] else f"-v{version}"
        bumped.append(
            {
                **event,
                "version": version,
                "event_id": event["event_id"] + suffix,
                "occurred_at": format_rfc3339(now),
            }
        )
    return bumped


def hostile_samples(
    listings: list[dict[str, Any]], run: str, count: int = HOSTILE_SAMPLES
) -> list[dict[str, Any]]:
    """Listing events stripped of their required ``title``, under ids that say what they are (pure).

    The worker dead-letters them, so the dashboard's dead-letter panels have data after a demo.

    Args:
        listings: Valid listing events to copy.
        run: Makes the event ids of this round unique, e.g. a random hex string.
        count: How many.
    """
    return [
        {key: value for key, value in event.items() if key != "title"}
        | {"listing_id": f"demo-hostile-no-title-{index}", "event_id": f"demo-hostile-{run}-{index}"}
        for index, event in enumerate(listings[:count])
    ]


async def _stream_catalog(
    settings: Settings, catalog: CatalogSummary, hostile: list[dict[str, Any]], echo: Echo, timeout_s: float
) -> DemoRun:
    client = EmbeddingClient.from_settings(settings)
    try:
        originals = list(read_jsonl(catalog.listings_path))
        stored = await client.stored_versions([e["listing_id"] for e in originals])
        listings = next_round(originals, stored, datetime.now(UTC))
        reviews = list(read_jsonl(catalog.reviews_path))
        wanted = {event["listing_id"]: event["version"] for event in listings}
        producer = reliable_producer(settings.kafka_bootstrap)
        await producer.start()
        started = time.monotonic()
        try:
            await produce(
                producer,
                [(event, topic_for(event, settings)) for event in listings + reviews + hostile],
                progress=sys.stderr.isatty(),
            )
        finally:
            await producer.stop()
        echo(
            f"produced {len(listings)} listing events and {len(reviews)} review events; waiting for embeddings"
        )
        echo(
            f"  and {len(hostile)} deliberately invalid listing event (a hostile sample without a title, "
            "dead-lettered, for the dashboard's dead-letter panels)"
        )
        await _wait_embedded(client, wanted, started + timeout_s, echo)
        embedded_s = time.monotonic() - started
        reviewed = {event["listing_id"] for event in reviews}
        await _wait_reviews_fused(client, reviewed, started + timeout_s)
        return DemoRun(len(listings), len(reviews), embedded_s)
    finally:
        await client.close()


async def _wait_embedded(
    client: EmbeddingClient, wanted: dict[str, int], deadline: float, echo: Echo
) -> None:
    reported = -1
    while True:
        stored = await client.stored_versions(list(wanted))
        done = sum(1 for listing_id, version in wanted.items() if (stored[listing_id] or 0) >= version)
        if done == len(wanted):
            return
        if done // 50 != reported // 50:
            echo(f"  embedded {done}/{len(wanted)}")
            reported = done
        if time.monotonic() > deadline:
            raise DemoTimeout(
                f"only {done} of {len(wanted)} listings were embedded in time; "
                "read the worker log under .toyfuse/worker/ and check `toyfuse stack status`"
            )
        await asyncio.sleep(POLL_S)


async def _wait_reviews_fused(client: EmbeddingClient, reviewed: set[str], deadline: float) -> None:
    while True:
        modalities = await client.stored_modalities(sorted(reviewed))
        if all("reviews" in present for present in modalities.values()):
            return
        if time.monotonic() > deadline:
            raise DemoTimeout(
                "reviews were not folded into every reviewed listing in time; read the worker log under .toyfuse/worker/"
            )
        await asyncio.sleep(POLL_S)


def modality_counts(modalities: dict[str, list[str]]) -> dict[str, int]:
    """How many listings have each modality (pure)."""
    counts: dict[str, int] = {name: 0 for name in MODALITIES}
    for present in modalities.values():
        for name in present:
            counts[name] += 1
    return counts


def showcase_ids(listings: list[dict[str, Any]], count: int = SHOWCASE) -> list[str]:
    """First listings of different leaf categories, so the examples span the catalog (pure)."""
    chosen: dict[str, str] = {}
    for event in listings:
        chosen.setdefault(event["categories"][-1], event["listing_id"])
    return list(chosen.values())[:count]


async def _print_similar(settings: Settings, catalog: CatalogSummary, echo: Echo) -> None:
    family = json.loads(catalog.products_path.read_text(encoding="utf-8"))
    client = EmbeddingClient.from_settings(settings)
    try:
        counts = modality_counts(await client.stored_modalities(sorted(family)))
        echo("listings with each modality: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
        listings = list(read_jsonl(catalog.listings_path))
        titles = {event["listing_id"]: event["title"] for event in listings}
        for listing_id in showcase_ids(listings):
            echo(f"\nsimilar to {listing_id}: {titles[listing_id]}")
            for neighbour in await client.similar(listing_id, NEIGHBOURS):
                title = titles[neighbour.listing_id]
                same = "same product" if family[neighbour.listing_id] == family[listing_id] else ""
                echo(f"  {neighbour.score:.3f}  {neighbour.listing_id}  {title}  {same}".rstrip())
    finally:
        await client.close()


def wait_for_first_scrape(api: PrometheusApi, timeout_s: float = FIRST_SCRAPE_WAIT_S) -> bool:
    """Wait until Prometheus holds the ready worker's series, so its rates see the demo's burst from the start.

    A worker that has just started and a burst that ends before Prometheus' first scrape of it would leave
    every rate at zero: the first sample would already hold the burst's totals.

    Returns:
        Whether it did within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while not api.query(WORKER_SERIES)["result"]:
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)
    return True


def wait_for_panels(api: PrometheusApi, timeout_s: float = MONITORING_WAIT_S) -> CheckReport:
    """Check every panel and rule once two scrapes have passed, again each scrape until all pass or time is up.

    Two scrapes after the last event give each rate window two samples.
    """
    panels, rules = load_panel_queries(), load_rule_expressions()
    time.sleep(2 * prometheus_server.SCRAPE_INTERVAL_S)
    deadline = time.monotonic() + timeout_s
    report = run_check(api, panels, rules)
    while not report.ok and time.monotonic() < deadline:
        time.sleep(prometheus_server.SCRAPE_INTERVAL_S)
        report = run_check(api, panels, rules)
    return report


def _print_monitoring(settings: Settings, hostile: list[dict[str, Any]], echo: Echo) -> None:
    # The first hostile sample created the dead-letter series; one more after a scrape gives it a rate.
    asyncio.run(produce_events(settings, hostile))
    api = PrometheusApi(prometheus_server.base_url(settings))
    report = wait_for_panels(api)
    echo(
        f"\nevery dashboard panel against {api.base_url}, after {len(hostile)} more hostile sample "
        "(`toyfuse monitoring check` shows the rules too):"
    )
    for row in report.rows:
        if row.kind == "panel":
            echo(f"  {format_row(row)}")
    echo(f"  {format_summary(report)}")


def run_demo(settings: Settings, echo: Echo = print, timeout_s: float = 1200.0) -> DemoRun:
    """Start the stack and worker, stream the sample catalog, wait for every embedding, show look-ups, then
    check every dashboard panel against the stack's Prometheus.

    Raises:
        StackError: a server could not be started.
        DemoTimeout: the listings were not all embedded within ``timeout_s``.
        PrometheusUnavailable: the stack's Prometheus did not answer.
    """
    stack.up(settings, echo)
    if not worker_process.status(settings).healthy:
        worker_process.start(settings, echo)
    catalog = generate_catalog(Path(settings.run_dir) / "catalog", media_base_url=settings.media_base_url)
    if not media_server.status(settings).healthy:
        media_server.start(settings, echo)
    echo(
        f"catalog: {catalog.listings} listings in {catalog.families} product families, {catalog.reviews} "
        f"reviews, {catalog.images} images, {catalog.videos} videos under {catalog.out_dir}"
    )
    hostile = hostile_samples(list(read_jsonl(catalog.listings_path)), uuid.uuid4().hex)
    if not wait_for_first_scrape(PrometheusApi(prometheus_server.base_url(settings))):
        echo(f"Prometheus has not scraped the worker in {FIRST_SCRAPE_WAIT_S:g} s: panels may lack data")
    run = asyncio.run(_stream_catalog(settings, catalog, hostile[:1], echo, timeout_s))
    echo(
        f"\nembedded {run.listings} listings in {run.seconds:.1f} s "
        f"({run.listings / run.seconds:.1f} listing events/s, from first produce to last stored)"
    )
    asyncio.run(_print_similar(settings, catalog, echo))
    _print_monitoring(settings, hostile[1:], echo)
    echo("\nlook up more:  toyfuse get toy-0001 --json   |   toyfuse similar toy-0001 -k 10 --max-price 30")
    echo("stop it all:   toyfuse stack down")
    return run
