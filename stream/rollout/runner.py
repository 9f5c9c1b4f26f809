"""The rollout's passes: the resumable scan, the catch-up over changed listings, and the promotion."""

import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from tqdm import tqdm

from stream.contracts.index import IndexSchema
from stream.contracts.schemas import format_rfc3339
from stream.features.vectors import FloatArray
from stream.model.fusion import INPUTS, FusionModel
from stream.rollout.compat import check_records
from stream.rollout.fusing import fuse
from stream.rollout.registry import ApplyMode, RolloutRegistry, RolloutState, ShadowWrite, Snapshot
from stream.store.versions import encoders_of, fusion_version_of, shadow_field, with_fusion_version

IDLE_ROUNDS = 20  # catch-up rounds in a row that write nothing (listings rewritten meanwhile) before it stops


def now() -> str:
    """The current time as stored in the rollout hash."""
    return format_rfc3339(datetime.now(UTC))


@dataclass
class Rollout:
    """Applies one fusion network to stored listings in batches, each write guarded by the listing's stamp."""

    registry: RolloutRegistry
    schema: IndexSchema
    model: FusionModel
    encoders: str  # the encoder part every record must name (stream.rollout.compat.check_encoders)
    batch: int = 256
    progress: bool = True

    async def scan(self, state: RolloutState, mode: ApplyMode = "shadow") -> int:
        """Every stored listing, from ``state``'s cursor on; the cursor is saved after each batch.

        Returns:
            how many listings the scan applied in all.
        """
        cursor, applied, first = state.cursor, state.applied, True
        total = await self.registry.active_set_size()
        with tqdm(
            total=total,
            initial=applied,
            desc=f"rollout {state.version}",
            unit="listing",
            file=sys.stderr,
            disable=not self.progress,
        ) as bar:
            while first or cursor != 0:
                cursor, listing_ids = await self.registry.scan(cursor, self.batch)
                written = await self.apply(listing_ids, state, mode) if listing_ids else 0
                applied, first = applied + written, False
                if mode == "shadow":
                    await self.registry.save_progress(cursor, applied, scanned=cursor == 0)
                bar.update(written)
        return applied

    async def catch_up(self, state: RolloutState) -> int:
        """Apply the listings written since the rollout started, until none waits or none can be written.

        Returns:
            how many still wait (listings rewritten faster than the catch-up reads them).
        """
        mode: ApplyMode = "promote" if state.phase == "switched" else "shadow"
        idle = 0
        while idle < IDLE_ROUNDS:
            listing_ids = await self.registry.changed_sample(self.batch)
            if not listing_ids:
                return 0
            idle = 0 if await self.apply(listing_ids, state, mode) else idle + 1
        current = await self.registry.state()
        return 0 if current is None else current.pending

    async def apply(self, listing_ids: list[str], state: RolloutState, mode: ApplyMode) -> int:
        """Read, fuse and write one batch.

        Raises:
            ReembedRequired: a listing was embedded by other encoders than the served ones.
        """
        snapshots = await self.registry.read(listing_ids)
        check_records(
            self.encoders,
            [(s.listing_id, encoders_of(s.model_version)) for s in snapshots if s.model_version],
        )
        stale = [
            s for s in snapshots if s.model_version and fusion_version_of(s.model_version) != state.version
        ]
        dims = {name: self.schema.vectors[name].dims for name in INPUTS}
        fused = dict(
            zip(
                (s.listing_id for s in stale), fuse(self.model, [s.vectors for s in stale], dims), strict=True
            )
        )
        writes = [self._write(snapshot, state, fused) for snapshot in snapshots]
        return await self.registry.apply(writes, state, mode)

    def _write(self, snapshot: Snapshot, state: RolloutState, fused: dict[str, FloatArray]) -> ShadowWrite:
        if snapshot.model_version is None:
            return ShadowWrite(snapshot, "", None, "")
        if snapshot.listing_id not in fused:  # the record already names the new version: its own vector
            own = snapshot.vectors[self.schema.search.vector]
            return ShadowWrite(snapshot, "", own, snapshot.model_version)
        return ShadowWrite(
            snapshot,
            shadow_field(self.schema, state.version),
            fused[snapshot.listing_id],
            with_fusion_version(snapshot.model_version, state.version),
        )
