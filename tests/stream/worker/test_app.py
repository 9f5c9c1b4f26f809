"""The Faust app: a dying agent fails the worker's health and stops it; settings reach Faust."""

import pytest

from stream.config import Settings
from stream.errors import SettingsError
from stream.worker.app import AgentFailures, create_app


async def crash() -> None:
    raise RuntimeError("consumer lost")


async def finish() -> None:
    return None


async def test_a_dying_agent_is_recorded_and_stops_the_worker() -> None:
    stops: list[str] = []
    failures = AgentFailures(lambda: stops.append("stop"))

    with pytest.raises(RuntimeError):
        await failures.guard("listing_events", crash())
    await failures.guard("review_events", finish())

    assert failures.failed == {"listing_events": "RuntimeError: consumer lost"}
    assert stops == ["stop"]


def test_the_consumer_group_settings_reach_faust() -> None:
    app = create_app(Settings(kafka_session_timeout_s=7.0, kafka_heartbeat_interval_s=2.0))

    assert (app.conf.broker_session_timeout, app.conf.broker_heartbeat_interval) == (7.0, 2.0)
    assert sorted(app.agents) == ["listing_events", "review_events"]


def test_a_batch_size_above_the_model_cap_is_refused() -> None:
    with pytest.raises(SettingsError, match="TOYFUSE_BATCH_SIZE=65"):
        create_app(Settings(batch_size=65))
