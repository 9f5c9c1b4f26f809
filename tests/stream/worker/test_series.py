"""The worker's labelled series exist at 0 before any event, so Prometheus' rates see the first increase."""

import uuid

from prometheus_client import REGISTRY

from stream import metrics
from stream.inference.repair import RELOAD_ORDER
from stream.worker.series import declare_worker_series


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_every_labelled_series_of_the_worker_starts_at_zero() -> None:
    run = uuid.uuid4().hex[:8]
    listings, reviews, model, vector = f"listings-{run}", f"reviews-{run}", f"model-{run}", f"vector-{run}"
    expected = [
        ("toyfuse_events_consumed_total", {"topic": reviews}),
        ("toyfuse_events_processed_total", {"topic": listings, "outcome": "applied"}),
        ("toyfuse_events_processed_total", {"topic": reviews, "outcome": "deadletter"}),
        ("toyfuse_events_processed_total", {"topic": listings, "outcome": "stale"}),
        ("toyfuse_batch_size_events_count", {"topic": listings}),
        ("toyfuse_batches_in_flight", {"topic": reviews}),
        ("toyfuse_embedding_freshness_seconds_count", {"topic": listings}),
        ("toyfuse_embedding_freshness_from_produce_seconds_count", {"topic": listings}),
        ("toyfuse_triton_request_seconds_count", {"model": model}),
        ("toyfuse_triton_batch_size_items_count", {"model": model}),
        ("toyfuse_triton_request_failures_total", {"model": model, "reason": "timeout"}),
        ("toyfuse_model_canary_failures_total", {"model": model}),
        ("toyfuse_encoder_cache_total", {"vector": vector, "outcome": "hit"}),
    ]
    metrics.model_check_rounds_total.clear()  # other tests may have run a round
    assert [value(name, **labels) for name, labels in expected] == [None] * len(expected)
    metrics.model_reloads_total.clear()  # its labels are the served models', which other tests may have set

    declare_worker_series((listings, reviews), listings, [model], [vector])

    assert [value(name, **labels) for name, labels in expected] == [0.0] * len(expected)
    reloads = [
        value("toyfuse_model_reloads_total", model=name, outcome=outcome)
        for name in RELOAD_ORDER
        for outcome in ("recovered", "failed")
    ]
    assert reloads == [0.0] * 2 * len(RELOAD_ORDER), "every model with a canary may be reloaded"
    rounds = [value("toyfuse_model_check_rounds_total", phase=phase) for phase in ("started", "finished")]
    assert rounds == [0.0, 0.0]
    assert value("toyfuse_embedding_freshness_seconds_count", topic=reviews) is None, (
        "observed for listings only"
    )
