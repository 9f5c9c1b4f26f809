"""Typed settings for every toyfuse process, read once at the entry point."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Ports, paths, topics and tuning knobs; override any field with ``TOYFUSE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="TOYFUSE_", frozen=True)

    run_dir: Path = Field(Path(".toyfuse"), description="Data, logs and pid files of the local stack.")
    kafka_version: str = Field("4.3.1", description="Apache Kafka release assembled from Maven Central.")
    kafka_host: str = Field("127.0.0.1", description="Kafka host for clients; a service name in compose.")
    redis_host: str = Field("127.0.0.1", description="Redis host for clients; a service name in compose.")
    triton_host: str = Field("127.0.0.1", description="Triton host for clients; a service name in compose.")
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_heap: str = Field("512m", description="JVM heap of the local broker.")
    redis_port: int = 16379
    triton_http_port: int = 18000
    triton_grpc_port: int = 18001
    triton_metrics_port: int = 18002
    worker_web_port: int = Field(16066, description="Faust worker's web server (also serves /metrics).")
    prometheus_port: int = Field(19090, description="Port of the local Prometheus that `stack up` starts.")
    lag_probe_interval_s: float = Field(
        5.0, gt=0, description="How often the worker measures its consumer group's lag per partition."
    )
    startup_timeout_s: float = Field(
        180.0,
        description="How long `stack up` waits for each server (Triton's first start exports and checks the encoders).",
    )

    model_repository: Path = REPO_ROOT / "triton_models"
    schemas_dir: Path = REPO_ROOT / "schemas"

    app_id: str = Field("toyfuse", description="Faust application id (consumer group).")
    kafka_session_timeout_s: float = Field(
        10.0, description="A worker that stops heartbeating loses its partitions to the others after this."
    )
    kafka_heartbeat_interval_s: float = Field(
        3.0, description="How often a worker heartbeats its consumer group."
    )
    listings_topic: str = "toys.listings.v1"
    reviews_topic: str = "toys.reviews.v1"
    embeddings_topic: str = "toys.embeddings.v1"
    deadletter_topic: str = "toys.deadletter.v1"
    topic_partitions: int = Field(4, description="Partitions of the listing and review topics.")

    text_model: str = Field("text_encoder", description="Triton model that embeds listing text.")
    batch_size: int = Field(32, description="Most events the worker embeds in one Triton call.")
    batch_window_s: float = Field(0.05, description="Longest wait for a batch to fill.")
    listing_batches_in_flight: int = Field(
        2,
        ge=1,
        description="Listing batches a worker handles at once, so Triton embeds one while another is stored.",
    )
    review_batches_in_flight: int = Field(
        2,
        ge=1,
        description="Review batches a worker handles at once, so Triton embeds one while another is re-fused.",
    )
    triton_timeout_s: float = Field(30.0, description="Deadline of one Triton request.")
    model_check_interval_s: float = Field(
        15.0,
        gt=0,
        description="How often the worker sends each Triton model a canary and reloads one that fails it.",
    )
    retry_initial_s: float = Field(0.5, description="First back-off while Triton or Redis is unavailable.")
    retry_max_s: float = Field(
        10.0, description="Longest back-off; the worker retries until the server is back."
    )

    vsim_ef: int = Field(
        400,
        ge=1,
        description="Exploration factor of a similar-listings search (VSIM EF; Redis's default 100).",
    )
    vsim_filter_ef_per_result: int = Field(
        40,
        ge=1,
        description="Graph nodes a filtered similar-listings search may visit per result asked (VSIM "
        "FILTER-EF = this x COUNT; Redis's default 100 per result).",
    )

    media_host: str = Field(
        "127.0.0.1", description="Host of the catalog media server; a service name in compose."
    )
    media_port: int = Field(
        18080, description="Port of the static HTTP server for the sample catalog's media."
    )
    media_timeout_s: float = Field(10.0, description="Deadline of one photo or video download.")
    media_max_bytes: int = Field(32 * 1024 * 1024, description="Largest photo or video download, in bytes.")
    media_max_concurrency: int = Field(16, description="Most media downloads in flight per worker.")
    media_listing_budget_s: float = Field(
        15.0, description="Longest time all downloads of one listing's media may take together."
    )
    media_allowed_hosts: str = Field(
        "",
        description="Comma-separated host or host:port entries media may come from although they are at "
        "private, loopback or other non-public addresses; the media server (media_host:media_port) "
        "always may.",
    )

    @property
    def kafka_bootstrap(self) -> str:
        """Bootstrap address of the local broker."""
        return f"{self.kafka_host}:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        """URL of the local Redis server."""
        return f"redis://{self.redis_host}:{self.redis_port}/0"

    @property
    def triton_grpc_url(self) -> str:
        """host:port of Triton's gRPC endpoint."""
        return f"{self.triton_host}:{self.triton_grpc_port}"

    @property
    def triton_http_url(self) -> str:
        """host:port of Triton's HTTP endpoint (canaries and model reloads)."""
        return f"{self.triton_host}:{self.triton_http_port}"

    @property
    def media_allow_list(self) -> tuple[str, ...]:
        """The media server's ``host:port`` and every entry of ``media_allowed_hosts``."""
        extra = (entry.strip() for entry in self.media_allowed_hosts.split(","))
        return (f"{self.media_host}:{self.media_port}", *(entry for entry in extra if entry))

    @property
    def media_base_url(self) -> str:
        """URL under which the sample catalog's media folder is served."""
        return f"http://{self.media_host}:{self.media_port}"
