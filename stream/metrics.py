"""Every Prometheus metric toyfuse exports, declared once."""

from prometheus_client import Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FRESHNESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)

events_consumed_total = Counter("toyfuse_events_consumed_total", "Events read from Kafka.", ["topic"])
events_processed_total = Counter(
    "toyfuse_events_processed_total",
    "Events handled, by outcome: applied, already_applied (replay), stale, deadletter.",
    ["topic", "outcome"],
)
DEADLETTER_OUTCOME = "deadletter"  # the events_processed_total outcome of a dead-lettered event
deadletter_total = Counter(
    "toyfuse_deadletter_total", "Events sent to the dead-letter topic, by reason.", ["topic", "reason"]
)
retries_total = Counter(
    "toyfuse_retries_total", "Batches retried after a server was unavailable.", ["component"]
)
triton_request_seconds = Histogram(
    "toyfuse_triton_request_seconds",
    "Duration of one Triton inference call.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
redis_write_seconds = Histogram(
    "toyfuse_redis_write_seconds", "Duration of one batched Redis write.", buckets=LATENCY_BUCKETS
)
batch_size_events = Histogram(
    "toyfuse_batch_size_events",
    "Events per processed batch.",
    ["topic"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
embedding_freshness_seconds = Histogram(
    "toyfuse_embedding_freshness_seconds",
    "Time from an event's occurred_at (event time, set by its producer's source) to its embedding "
    "being stored.",
    ["topic"],
    buckets=FRESHNESS_BUCKETS,
)
embedding_freshness_from_produce_seconds = Histogram(
    "toyfuse_embedding_freshness_from_produce_seconds",
    "Time from an event's Kafka record timestamp (produce time) to its embedding being stored.",
    ["topic"],
    buckets=FRESHNESS_BUCKETS,
)
last_stored_timestamp_seconds = Gauge(
    "toyfuse_last_stored_timestamp_seconds", "Unix time of the latest stored embedding change."
)
media_failures_total = Counter(
    "toyfuse_media_failures_total",
    "Photos or videos that could not be fetched or decoded, by reason.",
    ["reason"],
)
refusions_total = Counter(
    "toyfuse_refusions_total", "Listings re-fused after their reviews changed, by outcome.", ["outcome"]
)
model_canary_failures_total = Counter(
    "toyfuse_model_canary_failures_total",
    "Failed Triton calls whose known-good canary failed too: the model was broken, not the input.",
    ["model"],
)
model_reloads_total = Counter(
    "toyfuse_model_reloads_total",
    "Models the worker reloaded in Triton because they failed their canary (a dead Python-backend stub), "
    "by outcome: recovered (the canary answers after the reload) or failed.",
    ["model", "outcome"],
)
model_check_rounds_total = Counter(
    "toyfuse_model_check_rounds_total",
    "Rounds of the worker's model check (a canary to every model, then reloading those that fail), by "
    "phase: started or finished. A round is under way while started exceeds finished; its canaries are "
    "inferences of every model, so Triton's counts grow by them too.",
    ["phase"],
)
ROUND_STARTED, ROUND_FINISHED = "started", "finished"  # the model_check_rounds_total phases
upsert_inputs_total = Counter(
    "toyfuse_upsert_inputs_total",
    "Encoder inputs of upserts (text, image, video, and fusion of them all), by outcome: encoded "
    "(changed, so fetched and computed) or reused (unchanged, the stored vectors kept).",
    ["modality", "outcome"],
)
FUSED_INPUT = "fused"  # the upsert_inputs_total modality of the fusion step
ENCODED, REUSED = "encoded", "reused"  # the upsert_inputs_total outcomes
encoder_cache_total = Counter(
    "toyfuse_encoder_cache_total",
    "Look-ups in the shared encoder-output cache, by vector and outcome (hit, miss).",
    ["vector", "outcome"],
)
CACHE_HIT, CACHE_MISS = "hit", "miss"  # the encoder_cache_total outcomes

# Operator metrics: what a stalled, lagging or half-dead worker looks like from outside.
consumer_lag_messages = Gauge(
    "toyfuse_consumer_lag_messages",
    "Records of a partition this worker's consumer group has not committed: its end offset minus the "
    "group's committed offset, measured by the worker every lag_probe_interval_s.",
    ["topic", "partition"],
)
consumer_commit_age_seconds = Gauge(
    "toyfuse_consumer_commit_age_seconds",
    "Seconds since the group's committed offset of a partition last moved (since the worker first saw "
    "it, before any move).",
    ["topic", "partition"],
)
consumer_lag_probe_failures_total = Counter(
    "toyfuse_consumer_lag_probe_failures_total",
    "Lag measurements that failed (Kafka unreachable); the lag gauges keep their last values.",
)
agent_up = Gauge(
    "toyfuse_agent_up", "1 while an agent runs, 0 once it has died (the worker then stops).", ["agent"]
)
batches_in_flight = Gauge(
    "toyfuse_batches_in_flight", "Batches being embedded, stored or announced right now.", ["topic"]
)
triton_batch_size_items = Histogram(
    "toyfuse_triton_batch_size_items",
    "Items (texts, photos, frames, listings) in one Triton inference call.",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
triton_request_failures_total = Counter(
    "toyfuse_triton_request_failures_total",
    "Triton inference calls that failed, by model and reason (unavailable, timeout, model_error).",
    ["model", "reason"],
)
media_fetches_total = Counter(
    "toyfuse_media_fetches_total",
    "Photo and video downloads, by kind (photo, video) and outcome (ok, or the failure reason).",
    ["kind", "outcome"],
)
media_fetched_bytes_total = Counter(
    "toyfuse_media_fetched_bytes_total", "Bytes of photos and videos downloaded, by kind.", ["kind"]
)
model = Info(
    "toyfuse_model",
    "The served model versions: the listing model, the fusion inside it and each encoder.",
)
