"""Tests for stream/status/render.py: the screen a person reads and the JSON a script reads."""

import json
from dataclasses import replace

from stream.status.probes import WorkerHealth
from stream.status.render import render, to_json
from stream.status.snapshot import Server
from stream.status.summary import Freshness, TopicLag
from tests.stream.status.conftest import SnapshotFactory, healthy_figures

SECTIONS = (
    "servers",
    "triton models",
    "worker",
    "consumer lag",
    "throughput",
    "freshness",
    "dead letters",
    "store",
    "model version",
    "last error",
)
KEYS = {
    "taken_at",
    "healthy",
    "problems",
    "servers",
    "models",
    "worker",
    "model_version",
    "model_info",
    "interval_s",
    "throughput",
    "lag",
    "lag_source",
    "freshness",
    "batches_in_flight",
    "deadletters",
    "store",
    "unread",
}


def lines_with(screen: str, text: str) -> list[str]:
    return [line for line in screen.splitlines() if text in line]


def test_the_screen_of_a_healthy_stack(snapshot_factory: SnapshotFactory) -> None:
    screen = render(snapshot_factory())

    assert screen.splitlines()[0] == "toyfuse status  2026-12-01 20:30:05 UTC  healthy"
    assert all(any(line.startswith(section) for line in screen.splitlines()) for section in SECTIONS)
    assert lines_with(screen, "kafka")[0].split()[:3] == ["kafka", "up", "127.0.0.1:19092"]
    assert lines_with(screen, "prometheus")[0].endswith("(optional)")
    assert lines_with(screen, "text_encoder")[0].split() == ["text_encoder", "1", "ready"]
    assert lines_with(screen, "agent review_events")[0].split() == ["agent", "review_events", "running"]
    assert lines_with(screen, "toys.listings.v1   ")[0].split() == [
        "toys.listings.v1",
        "9",
        "[2]",
        "6",
        "1.5",
        "s",
    ]
    assert "toys.reviews.v1" in lines_with(screen, "3.5")[0]
    assert lines_with(screen, "event time")[0].split()[2:] == [
        "toys.listings.v1",
        "0.420s",
        "1.900s",
        "12",
        "in",
        "the",
        "interval",
    ]
    assert lines_with(screen, "produce time")[0].endswith("40 since the worker started")
    assert lines_with(screen, "dead letters")[0].startswith("dead letters  7 on the topic")
    assert lines_with(screen, "schema_violation")[0].split() == ["schema_violation", "5"]
    assert "store  vector sets and review keys laid out as the worker writes them" in screen
    assert "model version  listing_embedder/3 fusion=fusion-2" in screen
    assert lines_with(screen, "listing_model")[0].split() == ["listing_model", "listing_embedder/3"]
    assert lines_with(screen, "newest dead letter")[0].split()[3:6] == [
        "2026-12-01T20:29:00Z",
        "invalid_json",
        "toys.listings.v1[2]@17",
    ]


def test_one_problem_is_one(snapshot_factory: SnapshotFactory) -> None:
    screen = render(snapshot_factory(unread={"models": "index unreadable"}))
    assert screen.splitlines()[0].endswith("NOT HEALTHY (1 problem)")


def test_a_quantile_beyond_the_top_bucket_shows_as_a_floor(snapshot_factory: SnapshotFactory) -> None:
    late = {"event_time": {"t": Freshness(150.0, 300.0, 100.0, "interval", ["p99"])}, "produce_time": {}}
    screen = render(snapshot_factory(figures=replace(healthy_figures(), freshness=late)))
    assert lines_with(screen, "event time")[0].split()[3:5] == ["150.000s", ">300s"]


def test_the_most_frequent_dead_letter_reason_comes_first(snapshot_factory: SnapshotFactory) -> None:
    screen = render(snapshot_factory()).splitlines()
    assert screen.index(lines_with("\n".join(screen), "schema_violation")[0]) < screen.index(
        lines_with("\n".join(screen), "  invalid_json")[0]
    )


def test_a_stack_that_is_down_still_shows_every_section(snapshot_factory: SnapshotFactory) -> None:
    snapshot = snapshot_factory(
        servers=[
            Server("kafka", "127.0.0.1:1", False, "not answering"),
            Server("worker", "127.0.0.1:2", False, "not answering"),
        ],
        models=None,
        worker=None,
        figures=None,
        deadletters=None,
        unread={"worker": "nothing answers at http://127.0.0.1:2/health"},
    )

    screen = render(snapshot)

    assert screen.splitlines()[0].endswith("NOT HEALTHY (2 problems)")
    assert all(any(line.startswith(section) for line in screen.splitlines()) for section in SECTIONS)
    assert lines_with(screen, "kafka")[0].split()[:2] == ["kafka", "DOWN"]
    assert "  unknown: nothing answers at http://127.0.0.1:2/health" in screen
    assert "model version  unknown" in screen
    assert "  kafka is down at 127.0.0.1:1: not answering" in screen
    assert "toyfuse stack up" in screen


def test_a_failed_agent_is_the_last_error(snapshot_factory: SnapshotFactory) -> None:
    worker = WorkerHealth("failed", "listing_embedder/3", {"listing_events": "crashed"}, ["listing_events"])
    screen = render(snapshot_factory(worker=worker, deadletters=None))
    assert screen.splitlines()[0].endswith("NOT HEALTHY (2 problems)")
    assert screen.split("last error\n")[1].splitlines() == [
        "  the worker is failed",
        "  worker agent listing_events has crashed",
    ]


def test_json_holds_the_same_facts_and_round_trips(snapshot_factory: SnapshotFactory) -> None:
    found = to_json(snapshot_factory())

    assert json.loads(json.dumps(found)) == found
    assert set(found) == KEYS
    assert found["healthy"] is True
    assert found["lag_source"] == "worker"
    assert found["servers"]["prometheus"] == {
        "up": True,
        "address": "127.0.0.1:19090",
        "detail": "ready",
        "required": False,
    }
    assert found["models"]["fusion"] == {"ready": True, "version": "2", "detail": "ready"}
    assert found["worker"]["agents"] == {"listing_events": "running", "review_events": "running"}
    assert found["lag"]["toys.listings.v1"] == {
        "messages": 9.0,
        "worst_partition": 2,
        "worst_partition_messages": 6.0,
        "commit_age_s": 1.5,
    }
    assert found["freshness"]["event_time"]["toys.listings.v1"] == {
        "p50_s": 0.42,
        "p99_s": 1.9,
        "events": 12.0,
        "window": "interval",
        "beyond": [],
    }
    assert found["deadletters"]["by_reason"] == {"invalid_json": 2.0, "schema_violation": 5.0}
    assert found["deadletters"]["on_topic"] == 7
    assert found["deadletters"]["newest"]["reason"] == "invalid_json"
    assert found["model_version"] == "listing_embedder/3 fusion=fusion-2"
    assert found["store"] == {"problems": []}


def test_a_store_a_worker_would_refuse_is_shown_and_is_a_problem(snapshot_factory: SnapshotFactory) -> None:
    built_otherwise = "toyfuse:similar:fused was built with build_m 8, not 16"
    snapshot = snapshot_factory(store=[built_otherwise])

    screen = render(snapshot)

    assert screen.splitlines()[0].endswith("NOT HEALTHY (1 problem)")
    assert (
        screen.split("store  A WORKER WOULD REFUSE TO START\n")[1].splitlines()[0] == f"  {built_otherwise}"
    )
    assert f"  a worker would refuse to start: {built_otherwise}" in screen.split("last error\n")[1]
    assert to_json(snapshot)["store"] == {"problems": [built_otherwise]}


def test_lag_read_from_kafka_while_the_worker_is_down(snapshot_factory: SnapshotFactory) -> None:
    lag = {"toys.listings.v1": TopicLag(40.0, 3, 25.0, None)}
    snapshot = snapshot_factory(worker=None, figures=None, kafka_lag=lag)

    screen = render(snapshot)
    found = to_json(snapshot)

    assert lines_with(screen, "toys.listings.v1")[0].split() == ["toys.listings.v1", "40", "[3]", "25", "-"]
    assert "  read from Kafka: the worker's metrics are missing" in screen
    assert found["lag_source"] == "kafka"
    assert found["lag"]["toys.listings.v1"]["messages"] == 40.0


def test_json_of_a_stack_that_is_down_keeps_every_key(snapshot_factory: SnapshotFactory) -> None:
    found = to_json(snapshot_factory(models=None, worker=None, figures=None, deadletters=None, store=None))

    assert set(found) == KEYS
    assert found["throughput"] is None and found["lag"] is None and found["models"] is None
    assert found["lag_source"] is None
    assert found["deadletters"] == {"by_reason": None, "on_topic": None, "newest": None}
    assert found["store"] is None
