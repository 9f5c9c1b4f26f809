"""Tests for stream/status/snapshot.py: what counts as a problem, and the model version's sources."""

from dataclasses import replace

from stream.status.probes import ModelState, WorkerHealth
from stream.status.snapshot import Server
from tests.stream.status.conftest import SnapshotFactory, healthy_figures


def test_a_healthy_stack_has_no_problems(snapshot_factory: SnapshotFactory) -> None:
    snapshot = snapshot_factory()
    assert snapshot.problems == []
    assert snapshot.healthy


def test_a_required_server_down_is_a_problem_an_optional_one_is_not(
    snapshot_factory: SnapshotFactory,
) -> None:
    servers = [
        Server("kafka", "127.0.0.1:1", False, "not answering"),
        Server("prometheus", "127.0.0.1:2", False, "not ready", required=False),
    ]
    assert snapshot_factory(servers=servers).problems == ["kafka is down at 127.0.0.1:1: not answering"]


def test_a_model_not_ready_is_a_problem(snapshot_factory: SnapshotFactory) -> None:
    models = [
        ModelState("fusion", "2", True, "ready"),
        ModelState("image_encoder", "1", False, "unavailable: oom"),
    ]
    assert snapshot_factory(models=models).problems == [
        "Triton model image_encoder is not ready (unavailable: oom)"
    ]


def test_a_failed_agent_is_a_problem(snapshot_factory: SnapshotFactory) -> None:
    worker = WorkerHealth("failed", "listing_embedder/3", {"listing_events": "crashed"}, ["listing_events"])
    assert snapshot_factory(worker=worker).problems == [
        "the worker is failed",
        "worker agent listing_events has crashed",
    ]


def test_an_unread_section_is_a_problem_while_its_server_is_up(snapshot_factory: SnapshotFactory) -> None:
    unread = {"metrics": "nothing answers", "models": "index unreadable"}
    assert snapshot_factory(figures=None, models=None, unread=unread).problems == [
        "metrics unread: nothing answers",
        "models unread: index unreadable",
    ]


def test_an_unread_section_of_a_server_down_is_said_once(snapshot_factory: SnapshotFactory) -> None:
    servers = [
        Server("worker", "127.0.0.1:2", False, "not answering"),
        Server("triton", "127.0.0.1:3", True, "ok"),
    ]
    unread = {"worker": "refused", "metrics": "refused", "models": "index unreadable"}
    assert snapshot_factory(
        servers=servers, worker=None, figures=None, models=None, unread=unread
    ).problems == [
        "worker is down at 127.0.0.1:2: not answering",
        "models unread: index unreadable",
    ]


def test_the_model_version_comes_from_health_else_from_the_model_info(
    snapshot_factory: SnapshotFactory,
) -> None:
    snapshot = snapshot_factory()
    assert snapshot.model_version == "listing_embedder/3 fusion=fusion-2"
    starting = WorkerHealth("starting", None, {}, [])
    figures = replace(healthy_figures(), model_info={"model_version": "listing_embedder/4 fusion=f"})
    assert snapshot_factory(worker=starting, figures=figures).model_version == "listing_embedder/4 fusion=f"
    assert snapshot_factory(worker=None, figures=None).model_version is None


def test_a_store_that_could_not_be_read_while_redis_is_up_is_a_problem(
    snapshot_factory: SnapshotFactory,
) -> None:
    unread = {"store": "Redis at redis://127.0.0.1:16379/0 could not be read: timed out"}
    assert snapshot_factory(store=None, unread=unread).problems == [
        "store unread: Redis at redis://127.0.0.1:16379/0 could not be read: timed out"
    ]
