"""Everything `toyfuse status` shows, gathered in one pass; a server that is down is a fact, not an error."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar

from stream import stack
from stream.config import Settings
from stream.stack.process import LOCALHOST
from stream.status import probes
from stream.status.exceptions import Unreachable
from stream.status.probes import DeadLetterTail, ModelState, WorkerHealth
from stream.status.scrape import Scrape
from stream.status.summary import TopicLag, WorkerFigures, worker_figures

T = TypeVar("T")
LagSource = Literal["worker", "kafka"]
OPTIONAL_SERVERS = frozenset({"prometheus"})  # `toyfuse status` reads the worker's metrics itself
SECTION_SERVERS = {
    "worker": "worker",
    "metrics": "worker",
    "models": "triton",
    "deadletters": "kafka",
    "lag": "kafka",
    "store": "redis",
}


@dataclass(frozen=True)
class Server:
    """One server of the stack: whether it is up, and what it said."""

    name: str
    address: str
    up: bool
    detail: str
    required: bool = True  # down counts as a problem


@dataclass(frozen=True)
class Snapshot:
    """The facts of one `toyfuse status`; None where a server that holds them did not answer."""

    taken_at: datetime
    servers: list[Server]
    models: list[ModelState] | None
    worker: WorkerHealth | None
    figures: WorkerFigures | None
    deadletters: DeadLetterTail | None
    unread: dict[str, str]  # what could not be read, and why (the section's name -> the reason)
    kafka_lag: dict[str, TopicLag] | None = None  # read from Kafka when the worker's metrics are missing
    store: list[str] | None = None  # what in Redis would stop a worker from starting; None: not read

    @property
    def problems(self) -> list[str]:
        """Why the stack is not healthy, one sentence each; empty when it is."""
        found = [
            f"{s.name} is down at {s.address}: {s.detail}" for s in self.servers if s.required and not s.up
        ]
        found += [
            f"Triton model {m.name} is not ready ({m.detail})" for m in self.models or () if not m.ready
        ]
        found += [f"a worker would refuse to start: {problem}" for problem in self.store or ()]
        return (
            found
            + self._worker_problems()
            + [f"{what} unread: {why}" for what, why in self._missed().items()]
        )

    def _worker_problems(self) -> list[str]:
        if self.worker is None:
            return []  # a server down, above
        status = [] if self.worker.status == "ready" else [f"the worker is {self.worker.status}"]
        agents = self.worker.agents
        return status + [f"worker agent {a} has {agents.get(a, 'failed')}" for a in self.worker.failed_agents]

    def _missed(self) -> dict[str, str]:
        # A section of a server that is down is that server's problem, said once above.
        up = {s.name for s in self.servers if s.up}
        return {what: why for what, why in self.unread.items() if SECTION_SERVERS.get(what) in up}

    @property
    def healthy(self) -> bool:
        """Every required server is up, every model ready, the worker ready with all its agents and the
        store laid out as a worker writes it."""
        return not self.problems

    @property
    def lag(self) -> dict[str, TopicLag] | None:
        """The consumer lag per topic: the worker's gauges, else Kafka's offsets, else None."""
        return self.figures.lag if self.figures is not None else self.kafka_lag

    @property
    def lag_source(self) -> LagSource | None:
        """Where :attr:`lag` comes from."""
        return "worker" if self.figures is not None else "kafka" if self.kafka_lag is not None else None

    @property
    def model_version(self) -> str | None:
        """The serving model version: the worker's ``/health``, else its ``toyfuse_model_info``."""
        if self.worker is not None and self.worker.model_version:
            return self.worker.model_version
        return self.figures.model_info.get("model_version") if self.figures is not None else None


def take_snapshot(settings: Settings, interval_s: float) -> Snapshot:
    """Read every server once and the worker's metrics twice, ``interval_s`` apart, for the rates.

    Args:
        settings: the stack's ports and topics.
        interval_s: seconds between the two scrapes (the other reads happen in between).

    Returns:
        The snapshot; what did not answer is down or None, and ``unread`` says why.
    """
    unread: dict[str, str] = {}
    first = _attempt(unread, "metrics", probes.worker_scrape, settings)
    servers = [_server(status) for status in stack.status(settings)]
    worker = _attempt(unread, "worker", probes.worker_health, settings)
    servers.append(_worker_server(settings, worker))
    models = _attempt(unread, "models", probes.triton_models, settings)  # also when a canary fails
    kafka_up = any(s.name == "kafka" and s.up for s in servers)
    redis_up = any(s.name == "redis" and s.up for s in servers)
    store = _attempt(unread, "store", probes.store_problems, settings) if redis_up else None
    tail = _attempt(unread, "deadletters", probes.deadletter_tail, settings) if kafka_up else None
    figures = None
    if first is not None:
        time.sleep(max(0.0, first.taken_at + interval_s - time.monotonic()))
        second = _attempt(unread, "metrics", probes.worker_scrape, settings)
        figures = _figures(unread, first, second)
    lag = _attempt(unread, "lag", probes.kafka_lag, settings) if figures is None and kafka_up else None
    return Snapshot(datetime.now(UTC), servers, models, worker, figures, tail, unread, lag, store)


def _attempt(
    unread: dict[str, str], what: str, probe: Callable[[Settings], T], settings: Settings
) -> T | None:
    try:
        return probe(settings)
    except Unreachable as exc:
        unread[what] = str(exc)
        return None


def _figures(unread: dict[str, str], first: Scrape, second: Scrape | None) -> WorkerFigures | None:
    if second is None:
        return None
    try:
        return worker_figures(first, second)
    except ValueError as exc:
        unread["metrics"] = f"the worker's metrics cannot be summed up: {exc}"
        return None


def _server(status: stack.ServerStatus) -> Server:
    return Server(
        status.name, status.address, status.healthy, status.detail, status.name not in OPTIONAL_SERVERS
    )


def _worker_server(settings: Settings, health: WorkerHealth | None) -> Server:
    address = f"{LOCALHOST}:{settings.worker_web_port}"
    if health is None:
        return Server("worker", address, False, "not answering")
    failed = f" (failed agents: {', '.join(health.failed_agents)})" if health.failed_agents else ""
    return Server("worker", address, True, health.status + failed)
