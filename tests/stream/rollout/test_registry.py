"""The rollout registry's neighbour search on a throwaway Redis: the effort it asks of VSIM."""

import numpy as np
from redis.asyncio import Redis

from stream.contracts.index import IndexSchema
from stream.rollout.registry import RolloutRegistry
from stream.store.listings import SearchEffort
from tests.conftest import CommandSent, hashed_vector


async def test_neighbours_search_at_the_effort_of_similar_listing_look_ups(
    redis_client: Redis, schema: IndexSchema, command_sent: CommandSent
) -> None:
    vector_set = f"{schema.vector_set_key}:shadow"
    for listing_id in ("a", "b", "c"):
        vector = hashed_vector(listing_id, 8).astype(np.float32)
        await redis_client.execute_command("VADD", vector_set, "FP32", vector.tobytes(), listing_id)
    registry = RolloutRegistry(redis_client, schema, SearchEffort(ef=321))

    command = await command_sent(registry.neighbours(vector_set, ["a"], 2), "VSIM")

    assert command.endswith("ELE a COUNT 3 EF 321")
    found, missing = await registry.neighbours(vector_set, ["a", "missing"], 2)
    assert sorted(found or []) == ["b", "c"] and missing is None
