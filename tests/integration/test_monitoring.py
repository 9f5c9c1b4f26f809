"""The stack's Prometheus scrapes the worker and Triton: every dashboard panel has data after a short run,
every rule is healthy, and a stalled listing pipeline fires its alert while the worker stays up."""

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Collection
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from stream.catalog.generate import CatalogSummary
from stream.config import Settings
from stream.monitoring.check import CheckReport, PrometheusApi, run_check
from stream.monitoring.queries import load_panel_queries, load_rule_expressions
from stream.monitoring.report import format_row
from stream.producer import read_jsonl
from stream.stack import prometheus_server, worker_process
from stream.stack.worker_process import settings_env
from stream.store.client import EmbeddingClient
from tests.conftest import ListingEventFactory
from tests.integration.conftest import eventually, frozen_triton, send

pytestmark = pytest.mark.usefixtures("running_worker")
STALL_ALERT = "ToyfuseConsumerStalled"
LISTINGS, REVIEWS = 6, 8
LAST_WORKER_SCRAPE = 'max(timestamp(up{job="toyfuse-worker"}))'


def prometheus(settings: Settings) -> PrometheusApi:
    return PrometheusApi(prometheus_server.base_url(settings))


def renamed(
    listings: list[dict[str, Any]], reviews: list[dict[str, Any]], run: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Catalog listings under fresh ids, and catalog reviews moved onto them (round robin)."""
    owned = [
        {**event, "listing_id": f"mon-{run}-{index}", "event_id": uuid.uuid4().hex}
        for index, event in enumerate(listings)
    ]
    moved = [
        {
            **review,
            "listing_id": owned[index % len(owned)]["listing_id"],
            "review_id": f"{review['review_id']}-{run}",
            "event_id": uuid.uuid4().hex,
        }
        for index, review in enumerate(reviews)
    ]
    return owned, moved


async def stored(client: EmbeddingClient, ids: list[str], with_reviews: Collection[str] = ()) -> bool | None:
    """True once every listing is stored and those in ``with_reviews`` have their reviews folded in."""
    versions = await client.stored_versions(ids)
    if None in versions.values():
        return None
    modalities = await client.stored_modalities(sorted(with_reviews))
    return True if all("reviews" in present for present in modalities.values()) else None


async def run_round(
    settings: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    round_: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    """Produce the listings and one invalid event, wait until stored; then the reviews, until folded in."""
    listings, reviews = round_
    for event in listings:
        await send(producer, settings.listings_topic, event, event["listing_id"])
    # Deliberately invalid (no title), so that the dead-letter panels have something to show.
    invalid = {key: value for key, value in listings[0].items() if key != "title"}
    await send(producer, settings.listings_topic, invalid | {"listing_id": "mon-invalid"}, "mon-invalid")
    ids = [event["listing_id"] for event in listings]
    await eventually(lambda: stored(client, ids), "the listings stored", 180)
    for review in reviews:
        await send(producer, settings.reviews_topic, review, review["listing_id"])
    reviewed = {review["listing_id"] for review in reviews}
    await eventually(lambda: stored(client, ids, reviewed), "the reviews folded into their listings")


async def test_after_a_short_run_every_panel_has_data_and_every_rule_is_healthy(
    settings: Settings, catalog: CatalogSummary, producer: AIOKafkaProducer, client: EmbeddingClient
) -> None:
    api, run = prometheus(settings), uuid.uuid4().hex[:8]
    everything, reviews = list(read_jsonl(catalog.listings_path)), list(read_jsonl(catalog.reviews_path))
    first = next(event for event in everything if event.get("images") and event.get("videos"))
    others = [event for event in everything if event is not first][: LISTINGS - 1]
    # A rate needs an increase between two scrapes: a labelled series born between two scrapes with its
    # final value has a rate of 0. A first round creates every series a run touches (photos, a video, a
    # review, a dead letter); once Prometheus has scraped it, the second round is what the rates see. It
    # lists the first listing again under another id, as a seller relisting it would: encoder cache hits.
    await run_round(settings, producer, client, renamed([first], reviews[:1], f"{run}-a"))
    after_first = time.time()

    async def scraped() -> bool | None:
        result = (await asyncio.to_thread(api.query, LAST_WORKER_SCRAPE))["result"]
        return True if result and float(result[0]["value"][1]) > after_first else None

    await eventually(scraped, "Prometheus to scrape the worker after the first round", 30)
    await run_round(settings, producer, client, renamed([first, *others], reviews[1:REVIEWS], f"{run}-b"))

    api, panels, rules = prometheus(settings), load_panel_queries(), load_rule_expressions()

    reports: list[CheckReport] = []

    async def complete() -> CheckReport | None:
        reports.append(await asyncio.to_thread(run_check, api, panels, rules))
        if reports[-1].ok and all(row.health == "ok" for row in reports[-1].rows if row.kind != "panel"):
            return reports[-1]
        await asyncio.sleep(prometheus_server.SCRAPE_INTERVAL_S)  # nothing changes before the next scrape
        return None

    try:
        await eventually(complete, "every panel query to have data and every rule to be evaluated", 60)
    except AssertionError:
        best = min(reports, key=lambda report: sum(row.failed for row in report.rows))
        failing = [row for row in best.rows if row.failed or row.kind != "panel" and row.health != "ok"]
        lines = [f"{len(reports)} checks failed; the failures of the best one:", *map(format_row, failing)]
        raise AssertionError("\n".join(lines)) from None

    # The same check as the command line prints it, from a `toyfuse monitoring check` process.
    env = {**os.environ, **settings_env(settings)}
    command = [sys.executable, "-m", "stream.cli", "monitoring", "check"]
    result = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].endswith("; ok")


async def test_a_stalled_listing_pipeline_fires_its_alert_and_recovers(
    settings: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    listing_event_factory: ListingEventFactory,
) -> None:
    assert STALL_ALERT in {rule.name for rule in load_rule_expressions() if rule.kind == "alert"}
    api, run = prometheus(settings), uuid.uuid4().hex[:8]
    events = [
        listing_event_factory(listing_id=f"stall-{run}-{i}", title=f"Stall probe {run} {i}") for i in range(8)
    ]

    async def stall_firing() -> list[dict[str, Any]] | None:
        alerts = await asyncio.to_thread(api.alerts)
        firing = [a for a in alerts if a["labels"].get("alertname") == STALL_ALERT and a["state"] == "firing"]
        return firing or None

    async def quiet() -> bool | None:
        return True if await stall_firing() is None else None

    # An earlier test's fault may still be resolving; a healthy pipeline must not keep the alert firing.
    await eventually(quiet, f"{STALL_ALERT} not firing before the stall", 60)
    with frozen_triton(settings):
        started = time.monotonic()
        for event in events:
            await send(producer, settings.listings_topic, event, event["listing_id"])
        firing = await eventually(stall_firing, f"{STALL_ALERT} to fire while Triton is frozen", 150)
        print(f"{STALL_ALERT} fired {time.monotonic() - started:.0f} s after the stall began")
        assert {alert["labels"]["topic"] for alert in firing} == {settings.listings_topic}
        assert (await asyncio.to_thread(worker_process.status, settings)).healthy, "the worker stays up"
        assert (await client.stored_versions([e["listing_id"] for e in events])) == dict.fromkeys(
            (e["listing_id"] for e in events), None
        ), "nothing stored while Triton is frozen"

    await eventually(
        lambda: stored(client, [e["listing_id"] for e in events]), "the stalled listings stored", 120
    )

    async def caught_up() -> bool | None:
        lag = await asyncio.to_thread(
            api.query, f'sum(toyfuse_consumer_lag_messages{{topic="{settings.listings_topic}"}})'
        )
        return True if lag["result"] and float(lag["result"][0]["value"][1]) == 0 else None

    await eventually(caught_up, "the listing lag back to 0", 60)
