"""Every labelled series the worker exports, created at 0 when its pipelines are built.

A series born at its first increment has no earlier sample, so Prometheus' ``rate()`` and ``increase()``
miss that increment: an alert on the first Triton failure would not fire, and a dashboard panel over a
burst that ends between two scrapes would have nothing to draw. Creating each series at 0 before the
first event (Prometheus' own advice for labelled metrics) lets every later increase be seen.
"""

from collections.abc import Iterable
from typing import get_args

from stream import metrics
from stream.features.changes import INPUTS
from stream.inference.repair import FAILED, RECOVERED, RELOAD_ORDER
from stream.inference.triton import FailureReason
from stream.media.fetch import METRIC_KINDS
from stream.store.listings import WriteOutcome


def declare_worker_series(
    topics: Iterable[str], listings_topic: str, models: Iterable[str], cached_vectors: Iterable[str]
) -> None:
    """Create the worker's labelled series at 0.

    Args:
        topics: the consumed topics (their event, batch and outcome series).
        listings_topic: the topic whose events' freshness is observed.
        models: every Triton model the worker calls (latency, batch size, failures by reason, canary);
            reloads are declared for every model that has a canary, which the worker may reload.
        cached_vectors: the vectors looked up in the encoder cache (hit and miss).
    """
    for topic in topics:
        metrics.events_consumed_total.labels(topic)
        metrics.batch_size_events.labels(topic)
        metrics.batches_in_flight.labels(topic)
        for outcome in (*get_args(WriteOutcome), metrics.DEADLETTER_OUTCOME):
            metrics.events_processed_total.labels(topic, outcome)
    metrics.embedding_freshness_seconds.labels(listings_topic)
    metrics.embedding_freshness_from_produce_seconds.labels(listings_topic)
    for model in models:
        metrics.triton_request_seconds.labels(model)
        metrics.triton_batch_size_items.labels(model)
        metrics.model_canary_failures_total.labels(model)
        for reason in get_args(FailureReason):
            metrics.triton_request_failures_total.labels(model, reason)
    for phase in (metrics.ROUND_STARTED, metrics.ROUND_FINISHED):
        metrics.model_check_rounds_total.labels(phase)
    for model in RELOAD_ORDER:
        for outcome in (RECOVERED, FAILED):
            metrics.model_reloads_total.labels(model, outcome)
    for kind in METRIC_KINDS.values():
        metrics.media_fetches_total.labels(kind, "ok")
        metrics.media_fetched_bytes_total.labels(kind)
    for modality in (*INPUTS, metrics.FUSED_INPUT):
        for outcome in (metrics.ENCODED, metrics.REUSED):
            metrics.upsert_inputs_total.labels(modality, outcome)
    for vector in cached_vectors:
        for outcome in (metrics.CACHE_HIT, metrics.CACHE_MISS):
            metrics.encoder_cache_total.labels(vector, outcome)
