"""The worker's health report: ready once its pipelines are connected and no agent has crashed (pure)."""

from collections.abc import Mapping
from typing import Any

HEALTHY_AGENT_STATES = frozenset({"init", "running"})


def health_report(model_version: str | None, agent_states: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """HTTP status and body of ``/health``.

    Args:
        model_version: the serving model version once the pipelines are built, else None.
        agent_states: each agent's service state (``running``, ``crashed``, ``stopping``, ...).

    Returns:
        200 and ``status: ready`` when the pipelines are up and every agent runs; 503 otherwise.

    >>> health_report("listing_embedder/1", {"listing_events": "running"})[0]
    200
    >>> health_report(None, {"listing_events": "running"})[1]["status"]
    'starting'
    """
    failed = sorted(name for name, state in agent_states.items() if state not in HEALTHY_AGENT_STATES)
    status = "failed" if failed else "starting" if model_version is None else "ready"
    body = {
        "status": status,
        "model_version": model_version,
        "agents": dict(agent_states),
        "failed_agents": failed,
    }
    return (200 if status == "ready" else 503), body
