"""What the ``toyfuse rollout`` commands do: check, start, catch up, switch, clean up and abort a rollout."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from stream.config import Settings
from stream.contracts.index import IndexSchema
from stream.errors import RolloutError
from stream.model.loading import load_exported
from stream.rollout.compare import catalog_recall, neighbour_overlap
from stream.rollout.compat import check_encoders, check_records, check_video_pooling, fusion_version
from stream.rollout.registry import RolloutRegistry, RolloutState
from stream.rollout.runner import Rollout, now
from stream.store.listings import SearchEffort
from stream.store.versions import encoders_of, shadow_field


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[tuple[RolloutRegistry, IndexSchema]]:
    """The registry of the layout and Redis server ``settings`` name, closed afterwards."""
    schema = IndexSchema.from_yaml(settings.schemas_dir / "embedding_index.yaml")
    redis = Redis.from_url(settings.redis_url)
    try:
        yield RolloutRegistry(redis, schema, SearchEffort.from_settings(settings)), schema
    finally:
        await redis.aclose()


def prepared(
    repository: Path,
    settings: Settings,
    registry: RolloutRegistry,
    schema: IndexSchema,
    *,
    batch: int,
    progress: bool,
) -> tuple[str, Rollout]:
    """Check ``repository`` against the served models and load its fusion network.

    Returns:
        its fusion version and the rollout that applies it.

    Raises:
        ReembedRequired: its video pooling or an encoder differs from the served ones.
        SettingsError: it is not an exported repository.
    """
    check_video_pooling(repository, settings.model_repository)
    encoders = check_encoders(repository, settings.model_repository, schema)
    version = fusion_version(repository)
    model = load_exported(repository).fusion
    return version, Rollout(registry, schema, model, encoders, batch, progress)


async def registered(registry: RolloutRegistry) -> RolloutState:
    """The registered rollout.

    Raises:
        RolloutError: none is registered.
    """
    state = await registry.state()
    if state is None:
        raise RolloutError(
            "no rollout is registered; start one with `toyfuse rollout start --model-repository DIR`"
        )
    return state


async def start(settings: Settings, repository: Path, *, batch: int, progress: bool) -> RolloutState:
    """Register a rollout of ``repository``'s fusion (or resume it), scan every listing, then catch up.

    Raises:
        ReembedRequired: the video pooling or an encoder changed (nothing is registered).
        RolloutError: another rollout is registered.
    """
    async with opened(settings) as (registry, schema):
        version, rollout = prepared(repository, settings, registry, schema, batch=batch, progress=progress)
        _, first = await registry.scan(0, batch)
        check_records(
            rollout.encoders,
            [
                (s.listing_id, encoders_of(s.model_version))
                for s in await registry.read(first)
                if s.model_version
            ],
        )
        state = await registry.register(version, repository.resolve(), now())
        if state.phase == "scanning":
            await rollout.scan(state)
            state = await registered(registry)
        await rollout.catch_up(state)
        return await registered(registry)


async def catch_up(settings: Settings, *, batch: int, progress: bool) -> RolloutState:
    """Apply the registered rollout to the listings written since it started.

    Raises:
        RolloutError: none is registered, or its repository no longer holds its version.
    """
    async with opened(settings) as (registry, schema):
        state = await registered(registry)
        version, rollout = prepared(
            state.repository, settings, registry, schema, batch=batch, progress=progress
        )
        if version != state.version:
            raise RolloutError(
                f"{state.repository} now holds {version}, not the rolled-out {state.version}; restore it, or "
                "`toyfuse rollout abort` and start again"
            )
        await rollout.catch_up(state)
        return await registered(registry)


async def switch(settings: Settings) -> tuple[str, str | None]:
    """Point look-ups at the registered rollout's version, atomically.

    Returns:
        the new version and the one before (None: the unversioned set).

    Raises:
        RolloutError: none is registered, its scan is incomplete or listings wait for the catch-up.
    """
    async with opened(settings) as (registry, _):
        state = await registered(registry)
        return state.version, await registry.switch(state.version, now())


async def cleanup(settings: Settings, *, batch: int, progress: bool) -> str:
    """After a switch: make every listing's vector of the new version its own, then drop the old sets.

    Returns:
        the version that stays.

    Raises:
        RolloutError: none is registered, it is not switched, or listings keep changing meanwhile.
    """
    async with opened(settings) as (registry, schema):
        state = await registered(registry)
        if state.phase != "switched":
            raise RolloutError(
                f"the rollout of {state.version} is not switched; `toyfuse rollout switch` first"
            )
        _, rollout = prepared(state.repository, settings, registry, schema, batch=batch, progress=progress)
        await rollout.catch_up(state)
        await rollout.scan(state, mode="promote")
        await rollout.catch_up(state)
        await registry.finish(state.version)
        return state.version


async def abort(settings: Settings, *, batch: int) -> str:
    """Abandon a rollout that was not switched: its set, its shadow fields and the write tracking go.

    Returns:
        the abandoned version.

    Raises:
        RolloutError: none is registered, or it is already switched.
    """
    async with opened(settings) as (registry, schema):
        state = await registered(registry)
        await registry.abort(state.version)
        field, cursor, first = shadow_field(schema, state.version), 0, True
        while first or cursor != 0:
            cursor, listing_ids = await registry.scan(cursor, batch)
            await registry.drop_fields(listing_ids, field)
            first = False
        return state.version


async def status(settings: Settings) -> RolloutState:
    """The registered rollout.

    Raises:
        RolloutError: none is registered.
    """
    async with opened(settings) as (registry, _):
        return await registered(registry)


async def compare(settings: Settings, *, sample: int, features: Path | None) -> dict[str, Any]:
    """Neighbour overlap of the live and shadow sets, and Recall@1 of each network on ``features``.

    Raises:
        RolloutError: no rollout is registered.
    """
    async with opened(settings) as (registry, _):
        state = await registered(registry)
        report = {
            "live_version": await registry.active_version() or "unversioned",
            "shadow_version": state.version,
            **await neighbour_overlap(registry, state, sample),
        }
    if features is not None:
        report["recall@1"] = catalog_recall(settings.model_repository, state, features)
    return report
