"""The worker's /health report."""

from stream.worker.health import health_report


def test_ready_once_the_pipelines_are_connected_and_every_agent_runs() -> None:
    status, body = health_report(
        "listing_embedder/1 fusion=f", {"listing_events": "running", "review_events": "running"}
    )

    assert status == 200
    assert body == {
        "status": "ready",
        "model_version": "listing_embedder/1 fusion=f",
        "agents": {"listing_events": "running", "review_events": "running"},
        "failed_agents": [],
    }


def test_starting_until_the_pipelines_are_connected() -> None:
    status, body = health_report(None, {"listing_events": "running"})

    assert (status, body["status"]) == (503, "starting")


def test_a_crashed_agent_fails_the_worker() -> None:
    status, body = health_report("m", {"listing_events": "crashed", "review_events": "running"})

    assert (status, body["status"], body["failed_agents"]) == (503, "failed", ["listing_events"])
