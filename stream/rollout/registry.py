"""A rollout's state in Redis: registration, scan cursor, guarded shadow writes, switch, finish, abort."""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from redis.asyncio import Redis

from stream.contracts.index import IndexSchema
from stream.errors import RolloutError
from stream.features.vectors import FloatArray, from_redis_bytes, to_redis_bytes
from stream.model.fusion import INPUTS
from stream.store.listings import DEFAULT_EFFORT, VECTOR_FIELD_PREFIX, SearchEffort, search_attributes
from stream.store.redis_errors import pipelined, redis_errors
from stream.store.replies import reply_text
from stream.store.rollout_scripts import (
    ABORT_SCRIPT,
    APPLIED_CODE,
    APPLY_SCRIPT,
    FINISH_SCRIPT,
    NOT_SCANNED_CODE,
    PENDING_CODE,
    REGISTER_SCRIPT,
    SWITCH_SCRIPT,
    SWITCHED_CODE,
)
from stream.store.versions import VersionKeys, version_set_key

Phase = Literal["scanning", "scanned", "switched"]
# Before the switch a rollout stores shadow vectors; after it, its writes make them the records' own.
ApplyMode = Literal["shadow", "promote"]


@dataclass(frozen=True)
class RolloutState:
    """A registered rollout, as stored in its hash."""

    version: str  # the new fusion version
    vector_set: str  # its vector set
    repository: Path  # the exported model repository it applies
    phase: Phase
    cursor: int  # SCAN cursor of the scan over stored listings (0 before it starts and once it is done)
    applied: int  # listings the scan has applied so far
    pending: int  # listings written since the rollout started that wait for the catch-up


@dataclass(frozen=True)
class Snapshot:
    """A listing as the rollout read it: its stamp and, when it is live, what fusion needs."""

    listing_id: str
    stamp: str  # bumped by every write of the listing: a guarded write applies only if it is unchanged
    model_version: str | None  # None: deleted or never stored
    vectors: dict[str, FloatArray]  # the stored fusion inputs and the stored fused vector
    attributes: str  # the JSON filter attributes of the vector sets


@dataclass(frozen=True)
class ShadowWrite:
    """One guarded write of a listing's vector of the rollout's version."""

    snapshot: Snapshot
    field: str  # the hash field to store it in; "" when the record already names the version
    fused: FloatArray | None  # None when the listing is not live: it leaves the set
    model_version: str  # the record's model_version naming the new version (promote mode)


class RolloutRegistry:
    """Reads and changes one layout's rollout state; every change of a listing is one guarded script."""

    def __init__(self, redis: Redis, schema: IndexSchema, effort: SearchEffort = DEFAULT_EFFORT) -> None:
        self._redis = redis
        self._schema = schema
        self._effort = effort
        self.keys = VersionKeys.of(schema)
        self._scripts = {
            name: redis.register_script(script)
            for name, script in {
                "register": REGISTER_SCRIPT,
                "apply": APPLY_SCRIPT,
                "switch": SWITCH_SCRIPT,
                "finish": FINISH_SCRIPT,
                "abort": ABORT_SCRIPT,
            }.items()
        }

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[str | int], action: str) -> Any:
        async with redis_errors(action):
            return await self._scripts[name](keys=list(keys), args=list(args))

    async def register(self, version: str, repository: Path, started_at: str) -> RolloutState:
        """Register a rollout of ``version``, or find the one of that version registered (a resume).

        Raises:
            RolloutError: another version's rollout is registered, or ``version`` is already active.
        """
        keys = [self.keys.rollout, self.keys.registry, self.keys.active]
        args = [version, version_set_key(self._schema, version), str(repository), started_at]
        code, other = await self._run("register", keys, args, f"registering the rollout of {version}")
        if code != SWITCHED_CODE:
            raise RolloutError(
                f"cannot start a rollout of {version}: {reply_text(other)} is already registered or active; "
                "finish it (`toyfuse rollout switch` and `cleanup`) or `toyfuse rollout abort` it first"
            )
        state = await self.state()
        assert state is not None  # registered just now
        return state

    async def state(self) -> RolloutState | None:
        """The registered rollout, or None."""
        async with pipelined(self._redis, "reading the rollout state") as pipe:
            pipe.hgetall(self.keys.rollout)
            pipe.scard(self.keys.changed)
            raw, pending = await pipe.execute()
        if not raw:
            return None
        text = {key.decode(): value.decode() for key, value in raw.items()}
        return RolloutState(
            version=text["version"],
            vector_set=text["vector_set"],
            repository=Path(text["repository"]),
            phase=cast(Phase, text["state"]),
            cursor=int(text["cursor"]),
            applied=int(text["applied"]),
            pending=int(pending),
        )

    async def active_version(self) -> str | None:
        """The fusion version look-ups answer in (None before the first switch)."""
        async with redis_errors("reading the active fusion version"):
            active = await self._redis.get(self.keys.active)
        return None if active is None else reply_text(active)

    async def searched_set(self) -> str:
        """The vector set look-ups search now."""
        async with redis_errors("reading the active fusion version"):
            active = await self._redis.get(self.keys.active)
            key = None if active is None else await self._redis.hget(self.keys.registry, active)
        return self.keys.legacy_set if key is None else reply_text(key)

    async def active_set_size(self) -> int:
        """How many listings the set look-ups search now holds (a progress bar's total)."""
        key = await self.searched_set()
        async with redis_errors("counting listings"):
            return int(await self._redis.execute_command("VCARD", key))  # type: ignore[no-untyped-call]

    async def random_members(self, vector_set: str, count: int) -> list[str]:
        """Up to ``count`` distinct listings of a vector set, drawn at random."""
        async with redis_errors(f"sampling {vector_set}"):
            members = await self._redis.execute_command("VRANDMEMBER", vector_set, count)  # type: ignore[no-untyped-call]
        return [reply_text(member) for member in members or []]

    async def neighbours(self, vector_set: str, listing_ids: Sequence[str], k: int) -> list[list[str] | None]:
        """The ``k`` nearest listings of each listing in one vector set (None where it is not in the set),
        searched at the effort similar-listings look-ups use, so the comparison sees what users will."""
        async with redis_errors(f"searching {vector_set}"), self._redis.pipeline(transaction=False) as pipe:
            for listing_id in listing_ids:
                pipe.execute_command(
                    "VSIM", vector_set, "ELE", listing_id, "COUNT", k + 1, "EF", self._effort.ef
                )
            replies = await pipe.execute(raise_on_error=False)
        return [
            None
            if isinstance(reply, Exception)
            else [m.decode() for m in reply if m.decode() != listing_id][:k]
            for listing_id, reply in zip(listing_ids, replies, strict=True)
        ]

    async def scan(self, cursor: int, count: int) -> tuple[int, list[str]]:
        """One SCAN step over the listing hashes: the next cursor (0 at the end) and the listing ids."""
        prefix = self._schema.listing_key("")
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
        async with redis_errors("scanning listings"):
            following, keys = await self._redis.scan(cursor, match=pattern, count=count)
        return int(following), [reply_text(key)[len(prefix) :] for key in keys]

    async def save_progress(self, cursor: int, applied: int, *, scanned: bool) -> None:
        """Record how far the scan got, so that a new ``rollout start`` resumes there."""
        fields: dict[str, str | int] = {"cursor": cursor, "applied": applied}
        if scanned:
            fields["state"] = "scanned"
        async with redis_errors("saving the rollout cursor"):
            await self._redis.hset(self.keys.rollout, mapping=fields)  # type: ignore[arg-type]

    async def changed_sample(self, count: int) -> list[str]:
        """Up to ``count`` listings that wait for the catch-up."""
        async with redis_errors("reading changed listings"):
            members = await self._redis.srandmember(self.keys.changed, count)
        return [reply_text(member) for member in members or []]

    async def read(self, listing_ids: Sequence[str]) -> list[Snapshot]:
        """Snapshots of listings in one round trip."""
        async with pipelined(self._redis, f"reading {len(listing_ids)} listings") as pipe:
            for listing_id in listing_ids:
                pipe.hgetall(self._schema.listing_key(listing_id))
            replies = await pipe.execute()
        return [self._snapshot(listing_id, raw) for listing_id, raw in zip(listing_ids, replies, strict=True)]

    def _snapshot(self, listing_id: str, raw: dict[bytes, bytes]) -> Snapshot:
        stamp = raw.get(b"stamp", b"0").decode()
        if b"model_version" not in raw or b"deleted_at" in raw:
            return Snapshot(listing_id, stamp, None, {}, "{}")
        names = [*INPUTS, self._schema.search.vector]
        fields = {name: raw.get((VECTOR_FIELD_PREFIX + name).encode()) for name in names}
        vectors = {
            name: from_redis_bytes(value, self._schema.vectors[name].dims, f"{listing_id} {name}")
            for name, value in fields.items()
            if value is not None
        }
        metadata = json.loads(raw.get(b"metadata", b"{}"))
        return Snapshot(
            listing_id,
            stamp,
            raw[b"model_version"].decode(),
            vectors,
            search_attributes(self._schema, metadata),
        )

    async def apply(self, writes: Sequence[ShadowWrite], state: RolloutState, mode: ApplyMode) -> int:
        """Write each listing's vector of the rollout's version, unless the listing changed since its read.

        Returns:
            How many were written; a listing that changed stays in the changed set for the catch-up.
        """
        primary = VECTOR_FIELD_PREFIX + self._schema.search.vector
        async with pipelined(self._redis, f"writing {len(writes)} shadow vectors") as pipe:
            for write in writes:
                args: list[str | bytes] = [
                    write.snapshot.stamp,
                    write.snapshot.listing_id,
                    write.field,
                    b"" if write.fused is None else to_redis_bytes(write.fused),
                    self._schema.search.quantization,
                    write.snapshot.attributes,
                    mode,
                    primary,
                    write.model_version,
                    str(self._schema.search.build_ef),
                    str(self._schema.search.build_m),
                ]
                keys = [
                    self._schema.listing_key(write.snapshot.listing_id),
                    state.vector_set,
                    self.keys.changed,
                ]
                await self._scripts["apply"](keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        return sum(int(result) == APPLIED_CODE for result in results)

    async def switch(self, version: str, switched_at: str) -> str | None:
        """Point look-ups at ``version`` atomically.

        Returns:
            the version look-ups answered in before (None: the unversioned legacy set).

        Raises:
            RolloutError: it is not the registered rollout, its scan is incomplete or listings wait.
        """
        keys = [self.keys.rollout, self.keys.changed, self.keys.active]
        code, detail = await self._run("switch", keys, [version, switched_at], f"switching to {version}")
        detail = reply_text(detail)
        if code == SWITCHED_CODE:
            return detail or None
        if code == NOT_SCANNED_CODE:
            raise RolloutError(
                f"the rollout of {version} is {detail}; run `toyfuse rollout start` to the end"
            )
        if code == PENDING_CODE:
            raise RolloutError(
                f"{detail} listings changed since the rollout of {version} last caught up; "
                "run `toyfuse rollout catch-up`, then switch"
            )
        raise RolloutError(f"no rollout of {version} is registered (registered: {detail or 'none'})")

    async def finish(self, version: str) -> None:
        """Drop every other version's vector set and stop tracking writes.

        Raises:
            RolloutError: the rollout is not switched, or listings still wait for the catch-up.
        """
        keys = [self.keys.rollout, self.keys.changed, self.keys.registry, self.keys.legacy_set]
        if not await self._run("finish", keys, [version], f"finishing the rollout of {version}"):
            raise RolloutError(
                f"the rollout of {version} cannot be cleaned up: it is not switched, or listings changed "
                "meanwhile; run `toyfuse rollout switch` or `toyfuse rollout catch-up` first"
            )

    async def abort(self, version: str) -> None:
        """Abandon a rollout that was not switched: its vector set goes and writes are no longer tracked.

        Raises:
            RolloutError: it is not registered, or it is already the active version.
        """
        keys = [self.keys.rollout, self.keys.changed, self.keys.registry, self.keys.active]
        if not await self._run("abort", keys, [version], f"aborting the rollout of {version}"):
            raise RolloutError(
                f"cannot abort the rollout of {version}: it is not registered or it is already switched "
                "(roll back by rolling out the previous model again)"
            )

    async def drop_fields(self, listing_ids: Sequence[str], field: str) -> None:
        """Remove a hash field (an abandoned shadow vector) from listings."""
        async with pipelined(self._redis, f"removing {field} from {len(listing_ids)} listings") as pipe:
            for listing_id in listing_ids:
                pipe.hdel(self._schema.listing_key(listing_id), field)
            await pipe.execute()
