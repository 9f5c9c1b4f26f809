"""The command line and the blocking client against the real stack (sync tests: they run their own loops)."""

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from stream.cli import main
from stream.config import Settings
from stream.errors import ListingNotFound
from stream.stack.worker_process import settings_env
from stream.store.client import SyncEmbeddingClient
from tests.conftest import ListingEventFactory
from tests.integration.conftest import WAIT_S

pytestmark = pytest.mark.usefixtures("running_worker")


def toyfuse(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=settings_env(settings))


def replay(settings: Settings, tmp_path: Path, *events: dict[str, Any]) -> None:
    """Produce events with ``toyfuse replay`` and wait until each listing is embedded."""
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    result = toyfuse(settings, "replay", str(path))
    assert result.exit_code == 0, result.output
    assert f"produced {len(events)} events" in result.output
    deadline = time.monotonic() + WAIT_S
    with SyncEmbeddingClient(settings) as client:
        while not all(client.stored_versions([e["listing_id"] for e in events]).values()):
            assert time.monotonic() < deadline, "listings were not embedded in time"
            time.sleep(0.2)


def test_get_and_similar_print_json(
    settings: Settings, tmp_path: Path, listing_event_factory: ListingEventFactory
) -> None:
    usd = {"currency": "USD"}
    cheap = listing_event_factory(
        title="Plush Koala, Grey, 30 cm", categories=["Plush"], price={"amount": "9.50", **usd}
    )
    dear = listing_event_factory(
        title="Plush Koala Deluxe, 60 cm", categories=["Plush"], price={"amount": "59.00", **usd}
    )
    replay(settings, tmp_path, cheap, dear)

    got = toyfuse(settings, "get", cheap["listing_id"], "--json")
    assert got.exit_code == 0, got.output
    record = json.loads(got.output)
    assert {"listing_id", "version", "model_version", "updated_at", "modalities", "vectors"} <= record.keys()
    assert len(record["vectors"]["text"]) == 384

    similar = toyfuse(settings, "similar", dear["listing_id"], "-k", "50", "--category", "Plush", "--json")
    assert similar.exit_code == 0, similar.output
    neighbours = json.loads(similar.output)
    assert cheap["listing_id"] in [n["listing_id"] for n in neighbours]
    assert all(set(n) == {"listing_id", "score"} and -1 <= n["score"] <= 1 for n in neighbours)
    printed = toyfuse(settings, "similar", dear["listing_id"], "-k", "50", "--category", "Plush")
    assert printed.exit_code == 0, printed.output
    assert f"{cheap['listing_id']:<12} Plush Koala, Grey, 30 cm" in printed.output
    capped = json.loads(
        toyfuse(settings, "similar", cheap["listing_id"], "-k", "50", "--max-price", "10", "--json").output
    )
    assert dear["listing_id"] not in [n["listing_id"] for n in capped]


def test_get_of_an_unknown_listing_exits_1_with_a_clear_message(settings: Settings) -> None:
    result = toyfuse(settings, "get", "no-such-listing")

    assert result.exit_code == 1
    assert "no embedding stored for listing 'no-such-listing'" in result.output


def test_sync_client(settings: Settings, tmp_path: Path, listing_event_factory: ListingEventFactory) -> None:
    event = listing_event_factory()
    replay(settings, tmp_path, event)

    with SyncEmbeddingClient(settings) as client:
        record = client.get(event["listing_id"])
        assert (record.listing_id, record.version, record.modalities) == (event["listing_id"], 1, ["text"])
        with pytest.raises(ListingNotFound):
            client.similar("no-such-listing")
