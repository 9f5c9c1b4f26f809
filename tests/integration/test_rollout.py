"""``toyfuse rollout`` against a real Redis 8: shadow set, catch-up of live writes, atomic switch, refusals.

Only Redis is started (under the integration run dir and port); the worker's writes are made through the
same EmbeddingStore the worker uses, and the networks are small random ones exported into temporary
repositories, so no Triton or Kafka is needed.
"""

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from redis.asyncio import Redis
from safetensors.torch import save_file

from stream.config import REPO_ROOT, Settings
from stream.contracts.index import IndexSchema
from stream.errors import ListingNotFound, ReembedRequired, RolloutError, SettingsError
from stream.features.vectors import from_redis_bytes, l2_normalize
from stream.model.fusion import INPUTS, FusionConfig, ListingModel
from stream.model.loading import ARCHITECTURE, FUSION, VIDEO_POOLING, WEIGHTS, load_exported
from stream.rollout import adapt, service
from stream.rollout.registry import RolloutRegistry
from stream.stack import redis_server
from stream.store.listings import EmbeddingStore, ListingDeletion, ListingEmbedding, Refusion
from stream.store.versions import VersionKeys, shadow_field
from stream.train.export import fusion_pbtxt, video_pooling_pbtxt
from tests.integration.conftest import TEST_SETTINGS

OLD, NEW = "fusion-20260101-0000aaaa", "fusion-20260102-0000bbbb"
ENCODERS = "listing_embedder/1"


@pytest.fixture(scope="module")
def redis_only() -> Iterator[Settings]:
    """Only the integration stack's Redis, started for this module if it is not up, stopped afterwards."""
    started = not redis_server.answers_ping(TEST_SETTINGS)
    if started:
        redis_server.start(TEST_SETTINGS, print)
    yield TEST_SETTINGS
    if started:
        redis_server.stop(TEST_SETTINGS)


@pytest.fixture
def schema() -> IndexSchema:
    return IndexSchema.from_yaml(REPO_ROOT / "schemas" / "embedding_index.yaml")


def export_repository(
    folder: Path, schema: IndexSchema, version: str, seed: int, pooling_seed: int
) -> ListingModel:
    """A repository as `toyfuse export` writes it (plus listing_embedder/1), with seeded random weights."""
    torch.manual_seed(seed)
    config = FusionConfig.from_schema(schema)
    model = ListingModel(config).eval()
    torch.manual_seed(pooling_seed)
    model.video_pooling = type(model.video_pooling)(config).eval()
    for name, module, pbtxt in (
        (FUSION, model.fusion, fusion_pbtxt(config, version)),
        (VIDEO_POOLING, model.video_pooling, video_pooling_pbtxt(config, version)),
    ):
        (folder / name / "1").mkdir(parents=True)
        save_file(
            {k: v.contiguous() for k, v in module.state_dict().items()}, str(folder / name / "1" / WEIGHTS)
        )
        config.write_json(folder / name / "1" / ARCHITECTURE)
        (folder / name / "config.pbtxt").write_text(pbtxt, encoding="utf-8")
    return model


@pytest.fixture
def repositories(tmp_path: Path, schema: IndexSchema) -> tuple[Path, Path, ListingModel]:
    """The served repository (old fusion, listing_embedder/1) and a new one with the same video pooling."""
    served, new = tmp_path / "served", tmp_path / "new"
    export_repository(served, schema, OLD, seed=1, pooling_seed=5)
    shutil.copytree(
        REPO_ROOT / "triton_models" / "listing_embedder",
        served / "listing_embedder",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    model = export_repository(new, schema, NEW, seed=2, pooling_seed=5)
    return served, new, model


@pytest.fixture
async def redis(redis_only: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_only.redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def settings(redis_only: Settings, repositories: tuple[Path, Path, ListingModel]) -> Settings:
    return redis_only.model_copy(update={"model_repository": repositories[0]})


def vector(rng: np.random.Generator, dims: int) -> np.ndarray:
    return l2_normalize(rng.normal(size=dims)).astype(np.float32)


def embedding(
    schema: IndexSchema, listing_id: str, version: int, seed: int, fusion: str = OLD
) -> ListingEmbedding:
    rng = np.random.default_rng(seed)
    names = ["text", "text_multilingual", "image", "fused"] + (["video"] if seed % 2 else [])
    return ListingEmbedding(
        listing_id=listing_id,
        version=version,
        model_version=f"{ENCODERS} fusion={fusion}",
        updated_at="2026-01-05T10:00:01Z",
        source_event_id=uuid.uuid4().hex,
        vectors={name: vector(rng, schema.vectors[name].dims) for name in names},
        modalities=["text", "image", *(["video"] if seed % 2 else [])],
        metadata={
            "title": listing_id,
            "categories": ["Kites"] if seed % 3 else ["Dolls"],
            "price": 10.0 + seed,
        },
    )


def expected_fused(model: ListingModel, stored: dict[str, np.ndarray]) -> np.ndarray:
    """The new network on one listing's stored vectors, computed here independently of the rollout."""
    inputs = [
        torch.from_numpy(stored.get(name, np.zeros(model.config.input_dims()[name], np.float32)))[None]
        for name in INPUTS
    ]
    mask = torch.tensor([[1.0, "image" in stored, "video" in stored, "reviews" in stored]])
    with torch.inference_mode():
        fused, _ = model.fusion(*inputs, mask)
    return fused[0].numpy()


async def assert_shadow_matches(
    redis: Redis, schema: IndexSchema, model: ListingModel, listing_ids: list[str]
) -> None:
    """Every live listing's shadow vector is the new network on its stored vectors, and is in the new set."""
    store = EmbeddingStore(redis, schema)
    shadow_set = f"{schema.vector_set_key}:{NEW}"
    for listing_id, record in (await store.get_many(listing_ids)).items():
        in_set = await redis.execute_command("VISMEMBER", shadow_set, listing_id)
        if record is None:
            assert not in_set, listing_id
            continue
        raw = await redis.hget(schema.listing_key(listing_id), shadow_field(schema, NEW))
        assert raw is not None and in_set, listing_id
        shadow = from_redis_bytes(raw, 256, listing_id)
        np.testing.assert_allclose(shadow, expected_fused(model, record.vectors), atol=1e-5)


async def test_rollout_fills_the_shadow_set_with_the_new_network_on_stored_vectors(
    redis: Redis, schema: IndexSchema, settings: Settings, repositories: tuple[Path, Path, ListingModel]
) -> None:
    store = EmbeddingStore(redis, schema)
    ids = [f"toy-{i:03d}" for i in range(40)]
    await store.write([embedding(schema, listing_id, 1, seed) for seed, listing_id in enumerate(ids)])
    live_before = [n.listing_id for n in await store.similar(ids[0], 5)]

    state = await service.start(settings, repositories[1], batch=7, progress=False)

    assert (state.phase, state.applied, state.pending) == ("scanned", 40, 0)
    assert await redis.execute_command("VCARD", f"{schema.vector_set_key}:{NEW}") == 40
    await assert_shadow_matches(redis, schema, repositories[2], ids)
    assert [n.listing_id for n in await store.similar(ids[0], 5)] == live_before  # not switched yet
    assert (await store.get(ids[0])).model_version == f"{ENCODERS} fusion={OLD}"
    report = await service.compare(settings, sample=10, features=None)
    assert (report["live_version"], report["shadow_version"], report["listings"]) == ("unversioned", NEW, 10)
    assert 0.0 <= report["overlap@10"] < 1.0  # two random networks do not rank alike


async def test_writes_during_the_rollout_are_caught_up_before_the_switch(
    redis: Redis, schema: IndexSchema, settings: Settings, repositories: tuple[Path, Path, ListingModel]
) -> None:
    store = EmbeddingStore(redis, schema)
    ids = [f"toy-{i:03d}" for i in range(120)]
    await store.write([embedding(schema, listing_id, 1, seed) for seed, listing_id in enumerate(ids)])

    async def live_traffic() -> None:  # the worker keeps writing with the live model during the scan
        for round_ in range(1, 6):
            await store.write(
                [embedding(schema, ids[i], 1 + round_, 1000 * round_ + i) for i in range(0, 120, 7)]
            )
            reviews = np.ones(512, np.float32) / np.sqrt(512)
            fused = vector(np.random.default_rng(round_), 256)
            refusion = Refusion(
                ids[3], 1, f"{ENCODERS} fusion={OLD}", "t", fused, reviews, ["text", "reviews"]
            )
            await store.refuse([refusion])
            await asyncio.sleep(0)
        await store.write([ListingDeletion(ids[5], 9, "t", uuid.uuid4().hex, datetime.now(UTC))])
        await store.write([embedding(schema, "toy-new", 1, 7)])

    registry = RolloutRegistry(redis, schema)
    await asyncio.gather(service.start(settings, repositories[1], batch=5, progress=False), live_traffic())
    if (await registry.state()).pending:  # writes that landed after start's catch-up
        with pytest.raises(RolloutError, match="catch-up"):
            await service.switch(settings)
        await service.catch_up(settings, batch=5, progress=False)

    await assert_shadow_matches(redis, schema, repositories[2], [*ids, "toy-new"])
    assert not await redis.execute_command("VISMEMBER", f"{schema.vector_set_key}:{NEW}", ids[5])
    assert await service.switch(settings) == (NEW, None)


async def test_switch_flips_similar_atomically_and_get_answers_in_the_new_version(
    redis: Redis, schema: IndexSchema, settings: Settings, repositories: tuple[Path, Path, ListingModel]
) -> None:
    store = EmbeddingStore(redis, schema)
    ids = [f"toy-{i:03d}" for i in range(60)]
    await store.write([embedding(schema, listing_id, 1, seed) for seed, listing_id in enumerate(ids)])
    await service.start(settings, repositories[1], batch=16, progress=False)
    shadow_set = f"{schema.vector_set_key}:{NEW}"
    old = [n.listing_id for n in await store.similar(ids[0], 10)]
    new = [m.decode() for m in await redis.execute_command("VSIM", shadow_set, "ELE", ids[0], "COUNT", 11)][
        1:
    ]
    assert old != new  # the two networks rank differently, so a mix would show
    seen: list[list[str]] = []
    switched = asyncio.Event()

    async def reader() -> None:
        while not switched.is_set() or len(seen) < 5:
            seen.append([n.listing_id for n in await store.similar(ids[0], 10)])

    async def switcher() -> None:
        await asyncio.sleep(0.05)
        await service.switch(settings)
        switched.set()

    await asyncio.gather(reader(), switcher())

    assert {tuple(result) for result in seen} <= {tuple(old), tuple(new)}
    assert seen[-1] == new and seen[0] == old
    record = await store.get(ids[1])
    assert record.model_version == f"{ENCODERS} fusion={NEW}"
    np.testing.assert_allclose(
        record.vectors["fused"], expected_fused(repositories[2], record.vectors), atol=1e-5
    )


async def test_after_the_switch_old_writes_leave_the_live_set_until_caught_up_and_cleanup_promotes(
    redis: Redis, schema: IndexSchema, settings: Settings, repositories: tuple[Path, Path, ListingModel]
) -> None:
    store = EmbeddingStore(redis, schema)
    ids = [f"toy-{i:03d}" for i in range(20)]
    await store.write([embedding(schema, listing_id, 1, seed) for seed, listing_id in enumerate(ids)])
    await service.start(settings, repositories[1], batch=8, progress=False)
    await service.switch(settings)

    await store.write([embedding(schema, ids[0], 2, 500)])  # a worker still serving the old model
    with pytest.raises(ListingNotFound, match="catch-up"):
        await store.get(ids[0])
    assert ids[0] not in [n.listing_id for n in await store.similar(ids[1], 30)]
    await store.write([embedding(schema, ids[1], 2, 501, fusion=NEW)])  # the worker on the new model

    assert await service.cleanup(settings, batch=8, progress=False) == NEW

    keys = VersionKeys.of(schema)
    assert not await redis.exists(keys.legacy_set, keys.rollout, keys.changed)
    assert await redis.execute_command("VCARD", f"{schema.vector_set_key}:{NEW}") == 20
    for listing_id, record in (await store.get_many(ids)).items():
        assert record is not None and record.model_version == f"{ENCODERS} fusion={NEW}", listing_id
        assert not await redis.hexists(schema.listing_key(listing_id), shadow_field(schema, NEW))
    fused = (await store.get(ids[0])).vectors
    np.testing.assert_allclose(fused["fused"], expected_fused(repositories[2], fused), atol=1e-5)


async def test_a_changed_video_pooling_is_refused(
    redis: Redis, schema: IndexSchema, settings: Settings, tmp_path: Path
) -> None:
    changed = tmp_path / "changed-pooling"
    export_repository(changed, schema, NEW, seed=2, pooling_seed=6)
    await EmbeddingStore(redis, schema).write([embedding(schema, "toy-1", 1, 1)])

    with pytest.raises(ReembedRequired, match="video pooling.*toyfuse replay"):
        await service.start(settings, changed, batch=8, progress=False)
    assert await RolloutRegistry(redis, schema).state() is None


async def test_a_changed_encoder_is_refused(
    redis: Redis, schema: IndexSchema, settings: Settings, repositories: tuple[Path, Path, ListingModel]
) -> None:
    new = repositories[1]
    shutil.copytree(settings.model_repository / "listing_embedder", new / "listing_embedder")
    (new / "listing_embedder" / "1").rename(new / "listing_embedder" / "2")
    await EmbeddingStore(redis, schema).write([embedding(schema, "toy-1", 1, 1)])

    with pytest.raises(ReembedRequired, match="listing_embedder version 2.*toyfuse replay"):
        await service.start(settings, new, batch=8, progress=False)
    shutil.rmtree(new / "listing_embedder")
    embedded_by_other = replace(
        embedding(schema, "toy-2", 1, 2), model_version=f"listing_embedder/2 fusion={OLD}"
    )
    await EmbeddingStore(redis, schema).write([embedded_by_other])
    with pytest.raises(ReembedRequired, match="toy-2 was embedded by 'listing_embedder/2'"):
        await service.start(settings, new, batch=8, progress=False)
    assert await RolloutRegistry(redis, schema).state() is None


def product_embedding(schema: IndexSchema, index: int, rng: np.random.Generator) -> ListingEmbedding:
    """Listing ``index`` of product ``index // 3``: texts and photo near the product's, reviews at random."""
    product = np.random.default_rng(10_000 + index // 3)
    vectors = {
        name: l2_normalize(
            product.normal(size=schema.vectors[name].dims) + 0.5 * rng.normal(size=schema.vectors[name].dims)
        ).astype(np.float32)
        for name in ("text", "text_multilingual", "image")
    }
    vectors["reviews"] = vector(rng, schema.vectors["reviews"].dims)
    vectors["fused"] = vector(rng, schema.vectors["fused"].dims)
    return replace(
        embedding(schema, f"toy-{index:03d}", 1, index),
        vectors=vectors,
        modalities=["text", "image", "reviews"],
    )


async def test_adapt_recentres_and_reweights_the_served_fusion_on_stored_vectors_for_a_rollout(
    redis: Redis, schema: IndexSchema, settings: Settings, tmp_path: Path
) -> None:
    store = EmbeddingStore(redis, schema)
    rng = np.random.default_rng(3)
    await store.write([product_embedding(schema, index, rng) for index in range(90)])
    records = await store.get_many([f"toy-{index:03d}" for index in range(90)])
    served = load_exported(settings.model_repository)

    done = await adapt.adapt(settings, tmp_path / "adapted", sample=1000, batch=16, reweight=True)

    expected = load_exported(settings.model_repository)
    dims = expected.config.input_dims()
    accuracies = adapt.adapt_model(expected, [r.vectors for r in records.values() if r], dims, reweight=True)
    adapted = load_exported(tmp_path / "adapted")
    assert done.listings == 90 and done.accuracies == pytest.approx(accuracies)
    torch.testing.assert_close(adapted.fusion.input_weights(), expected.fusion.input_weights())
    assert not torch.allclose(adapted.fusion.input_weights(), served.fusion.input_weights())
    assert accuracies["reviews"] < 0.5 * min(accuracies[name] for name in ("text", "image"))
    state = await service.start(settings, tmp_path / "adapted", batch=16, progress=False)
    assert (state.version, state.phase, state.applied) == (done.exported.model_version, "scanned", 90)


async def test_adapt_refuses_the_served_repository_and_an_empty_catalog(
    redis: Redis, schema: IndexSchema, settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(SettingsError, match="served model repository"):
        await adapt.adapt(settings, settings.model_repository, sample=100, batch=16, reweight=True)
    await EmbeddingStore(redis, schema).write([embedding(schema, "toy-000", 1, 0)])
    with pytest.raises(RolloutError, match="only 1 listings are stored"):
        await adapt.adapt(settings, tmp_path / "adapted", sample=100, batch=16, reweight=False)
