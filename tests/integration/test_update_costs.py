"""stream.bench.updates on the real stack: both kinds of update go through the worker and are timed."""

import pytest

from stream.bench.updates import update_costs
from stream.config import Settings
from stream.store.client import EmbeddingClient
from tests.conftest import ListingEventFactory

pytestmark = pytest.mark.usefixtures("running_worker")


async def test_update_costs_times_full_and_price_only_rounds(
    settings: Settings, client: EmbeddingClient, listing_event_factory: ListingEventFactory
) -> None:
    listings = [listing_event_factory(listing_id=f"cost-{i}", title=f"Cost probe {i}") for i in range(4)]

    costs = await update_costs(settings, listings, rounds=2)

    assert (costs["listings"], costs["rounds"]) == (4, 2)
    assert len(costs["full_s"]) == len(costs["price_only_s"]) == 2
    assert all(seconds > 0 for seconds in [*costs["full_s"], *costs["price_only_s"]])
    assert costs["ratio"] == round(costs["price_only_median_s"] / costs["full_median_s"], 4)
