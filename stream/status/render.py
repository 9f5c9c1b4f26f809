"""`toyfuse status` for a person (one screen of text) and for scripts (one JSON object) (pure)."""

from dataclasses import asdict
from typing import Any

from stream.contracts.schemas import format_rfc3339
from stream.deadletters.records import DeadLetter, format_line
from stream.status.snapshot import Snapshot
from stream.status.summary import Freshness, TopicLag, WorkerFigures

NO_METRICS = "  unknown: the worker's metrics could not be read"
START_HINT = "start what is down with `toyfuse stack up` (and the worker: `toyfuse worker`)"
KIND_NAMES = {"event_time": "event time", "produce_time": "produce time"}


def to_json(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as JSON-ready data, every key always present (None where a server did not answer).

    Keys: ``taken_at``, ``healthy``, ``problems`` (list of sentences), ``servers`` (name -> up, address,
    detail, required), ``models`` (name -> ready, version, detail), ``worker`` (status, model_version,
    agents, failed_agents), ``model_version``, ``model_info``, ``interval_s``, ``throughput`` (topic ->
    events/s), ``lag`` (topic -> messages, worst_partition, worst_partition_messages, commit_age_s),
    ``lag_source`` (worker: its gauges; kafka: the group's offsets, when the worker's metrics are missing),
    ``freshness`` (event_time / produce_time -> topic -> p50_s, p99_s, events, window, beyond: the
    quantiles above the highest bucket, whose value is a floor), ``batches_in_flight``
    (topic -> batches), ``deadletters`` (by_reason since the worker started, on_topic, newest), ``store``
    (problems: what in Redis would stop a worker from starting, empty when nothing; None when Redis was
    not read) and ``unread`` (section -> why it could not be read).
    """
    figures, worker, tail = snapshot.figures, snapshot.worker, snapshot.deadletters
    return {
        "taken_at": format_rfc3339(snapshot.taken_at),
        "healthy": snapshot.healthy,
        "problems": snapshot.problems,
        "servers": {
            s.name: {"up": s.up, "address": s.address, "detail": s.detail, "required": s.required}
            for s in snapshot.servers
        },
        "models": None
        if snapshot.models is None
        else {m.name: {"ready": m.ready, "version": m.version, "detail": m.detail} for m in snapshot.models},
        "worker": None if worker is None else asdict(worker),
        "model_version": snapshot.model_version,
        "lag": None if snapshot.lag is None else {t: asdict(lag) for t, lag in snapshot.lag.items()},
        "lag_source": snapshot.lag_source,
        **_figures_json(figures),
        "deadletters": {
            "by_reason": None if figures is None else figures.deadletters,
            "on_topic": None if tail is None else tail.records,
            "newest": None if tail is None or tail.newest is None else _letter_json(tail.newest),
        },
        "store": None if snapshot.store is None else {"problems": snapshot.store},
        "unread": snapshot.unread,
    }


def _figures_json(figures: WorkerFigures | None) -> dict[str, Any]:
    if figures is None:
        keys = ("model_info", "interval_s", "throughput", "freshness", "batches_in_flight")
        return dict.fromkeys(keys)
    return {
        "model_info": figures.model_info,
        "interval_s": figures.interval_s,
        "throughput": figures.throughput,
        "freshness": {
            kind: {topic: asdict(found) for topic, found in topics.items()}
            for kind, topics in figures.freshness.items()
        },
        "batches_in_flight": figures.batches_in_flight,
    }


def _letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "failed_at": format_rfc3339(letter.failed_at),
        "reason": letter.reason,
        "source": letter.source,
        "message": letter.message,
    }


def render(snapshot: Snapshot) -> str:
    """The screen: servers, models, worker, lag, throughput, freshness, dead letters, store, model, last error."""
    count = len(snapshot.problems)
    verdict = "healthy" if not count else f"NOT HEALTHY ({count} problem{'s' if count > 1 else ''})"
    taken = snapshot.taken_at.strftime("%Y-%m-%d %H:%M:%S %Z")
    lines = [f"toyfuse status  {taken}  {verdict}", "", "servers"]
    for s in snapshot.servers:
        state = "up" if s.up else "DOWN" if s.required else "down"
        optional = "" if s.required else "  (optional)"
        lines.append(f"  {s.name:<11} {state:<5} {s.address:<22} {s.detail}{optional}")
    lines += ["", "triton models", *_models(snapshot), "", "worker", *_worker(snapshot)]
    figures = snapshot.figures
    lines += ["", *_lag(snapshot), "", *_throughput(figures), "", *_freshness(figures)]
    lines += [
        "",
        *_deadletters(snapshot),
        "",
        *_store(snapshot),
        "",
        f"model version  {snapshot.model_version or 'unknown'}",
    ]
    info = figures.model_info if figures is not None else {}
    lines += [f"  {name:<26} {value}" for name, value in sorted(info.items()) if name != "model_version"]
    return "\n".join([*lines, "", "last error", *_last_error(snapshot)])


def _models(snapshot: Snapshot) -> list[str]:
    if snapshot.models is None:
        return [f"  unknown: {snapshot.unread.get('models', 'Triton is down')}"]
    if not snapshot.models:
        return ["  none: the repository index is empty"]
    return [
        f"  {m.name:<28} {m.version or '-':<4} {'ready' if m.ready else 'NOT READY'}"
        + ("" if m.ready else f"  {m.detail}")
        for m in snapshot.models
    ]


def _worker(snapshot: Snapshot) -> list[str]:
    worker = snapshot.worker
    if worker is None:
        return [f"  unknown: {snapshot.unread.get('worker', 'not answering')}"]
    lines = [f"  status {worker.status}"]
    lines += [f"  agent {name:<24} {state}" for name, state in sorted(worker.agents.items())]
    if snapshot.figures is not None:
        flight = snapshot.figures.batches_in_flight
        shown = ", ".join(f"{topic} {count:g}" for topic, count in sorted(flight.items()))
        lines.append(f"  batches in flight  {shown or 'none'}")
    return lines


def _lag(snapshot: Snapshot) -> list[str]:
    head = f"consumer lag  {'topic':<22} {'messages':>9}  {'worst partition':<17} commit age"
    lag = snapshot.lag
    if lag is None:
        return [head, NO_METRICS]
    if not lag:
        return [head, "  none measured yet (the worker measures it every lag_probe_interval_s)"]
    source = ["  read from Kafka: the worker's metrics are missing"] if snapshot.lag_source == "kafka" else []
    return [head, *(_lag_line(topic, found) for topic, found in lag.items()), *source]


def _lag_line(topic: str, lag: TopicLag) -> str:
    worst = f"[{lag.worst_partition}] {lag.worst_partition_messages:g}"
    age = "-" if lag.commit_age_s is None else f"{lag.commit_age_s:.1f} s"
    return f"              {topic:<22} {lag.messages:>9g}  {worst:<17} {age}"


def _throughput(figures: WorkerFigures | None) -> list[str]:
    if figures is None:
        return ["throughput", NO_METRICS]
    head = f"throughput (events/s over {figures.interval_s:.1f} s)"
    if not figures.throughput:
        return [head, "  no events handled since the worker started"]
    return [head, *(f"  {topic:<34} {rate:8.1f}" for topic, rate in figures.throughput.items())]


def _freshness(figures: WorkerFigures | None) -> list[str]:
    head = f"freshness     {'':<13}{'topic':<22} {'p50':>8} {'p99':>8}  events"
    if figures is None:
        return [head, NO_METRICS]
    rows = [
        _freshness_line(KIND_NAMES[kind], topic, found)
        for kind, topics in figures.freshness.items()
        for topic, found in topics.items()
    ]
    return [head, *(rows or ["  nothing stored since the worker started"])]


def _freshness_line(kind: str, topic: str, found: Freshness) -> str:
    window = "in the interval" if found.window == "interval" else "since the worker started"
    return (
        f"  {kind:<24} {topic:<22} {_seconds(found.p50_s, 'p50' in found.beyond):>8}"
        f" {_seconds(found.p99_s, 'p99' in found.beyond):>8}  {found.events:g} {window}"
    )


def _seconds(value: float | None, beyond: bool) -> str:
    if value is None:
        return "-"
    return f">{value:g}s" if beyond else f"{value:.3f}s"


def _deadletters(snapshot: Snapshot) -> list[str]:
    tail, figures = snapshot.deadletters, snapshot.figures
    on_topic = "unknown" if tail is None else f"{tail.records}"
    lines = [f"dead letters  {on_topic} on the topic; by reason since the worker started:"]
    if figures is None:
        return [*lines, NO_METRICS]
    counts = sorted(figures.deadletters.items(), key=lambda item: (-item[1], item[0]))
    return (
        [*lines, *(f"  {reason:<34} {count:8g}" for reason, count in counts)]
        if counts
        else [*lines, "  none"]
    )


def _store(snapshot: Snapshot) -> list[str]:
    if snapshot.store is None:
        return [f"store  unknown: {snapshot.unread.get('store', 'Redis is down')}"]
    if not snapshot.store:
        return ["store  vector sets and review keys laid out as the worker writes them"]
    return ["store  A WORKER WOULD REFUSE TO START", *(f"  {problem}" for problem in snapshot.store)]


def _last_error(snapshot: Snapshot) -> list[str]:
    lines = [f"  {problem}" for problem in snapshot.problems]
    if any(s.required and not s.up for s in snapshot.servers):
        lines.append(f"  {START_HINT}")
    tail = snapshot.deadletters
    if tail is not None and tail.newest is not None:
        lines.append(f"  newest dead letter: {format_line(tail.newest)}")
    return lines or ["  none"]
