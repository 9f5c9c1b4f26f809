"""Fusion model versions in Redis: the active-version pointer, per-version vector sets and shadow fields.

Before any rollout there is no pointer: look-ups search the schema's vector set and read ``vec:fused``,
whatever version wrote them. ``toyfuse rollout`` registers a new version with a vector set of its own
(``<vector set>:<version>``) in a registry hash, fills it and stores each listing's vector of that
version in a shadow field ``vec:fused@<version>``; ``switch`` points look-ups at it.
"""

import re
from dataclasses import dataclass

from stream.contracts.index import IndexSchema
from stream.errors import SettingsError

# Fusion versions become key and field names: `toyfuse export` writes fusion-<yyyymmdd>-<8 hex>.
VERSION_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,100}")
FUSION_TAG = "fusion="  # model_version reads e.g. "listing_embedder/1 fusion=fusion-20261127-83862b81"
SHADOW_MARK = "@"  # a shadow field is vec:<search vector>@<version>


@dataclass(frozen=True)
class VersionKeys:
    """The Redis keys of fusion versions and of a rollout, under one layout's key prefix."""

    legacy_set: str  # the schema's vector set: what look-ups search while no version is active
    active: str  # string: the active fusion version (absent before the first switch)
    registry: str  # hash: fusion version -> its vector set
    rollout: str  # hash: the rollout in progress (stream.rollout.state), absent when none
    changed: str  # set: listings written while a rollout is registered, for its catch-up

    @classmethod
    def of(cls, schema: IndexSchema) -> "VersionKeys":
        """The keys of ``schema``'s key prefix."""
        prefix = schema.key_prefix
        return cls(
            legacy_set=schema.vector_set_key,
            active=f"{prefix}:fusion:active",
            registry=f"{prefix}:fusion:sets",
            rollout=f"{prefix}:rollout",
            changed=f"{prefix}:rollout:changed",
        )

    def routing(self) -> list[str]:
        """The keys every listing write script takes after its own: where each version's vectors go."""
        return [self.legacy_set, self.registry, self.rollout, self.changed]


def check_version(version: str) -> str:
    """Return ``version`` if it can name a vector set and a hash field.

    Raises:
        SettingsError: it is empty, too long or has characters other than letters, digits and ``._-``.
    """
    if not VERSION_PATTERN.fullmatch(version):
        raise SettingsError(
            f"fusion model version {version!r} cannot name a vector set; re-export the model with "
            "`toyfuse export` (versions look like fusion-20261127-83862b81)"
        )
    return version


def version_set_key(schema: IndexSchema, version: str) -> str:
    """The vector set of one fusion version."""
    return f"{schema.vector_set_key}:{check_version(version)}"


def shadow_field(schema: IndexSchema, version: str) -> str:
    """The hash field holding a listing's fused vector of ``version`` when the record names another."""
    return f"vec:{schema.search.vector}{SHADOW_MARK}{check_version(version)}"


def fusion_version_of(model_version: str) -> str | None:
    """The fusion version a record's ``model_version`` names, or None (pure).

    >>> fusion_version_of("listing_embedder/1 fusion=fusion-20261127-83862b81")
    'fusion-20261127-83862b81'
    """
    tags = [part[len(FUSION_TAG) :] for part in model_version.split() if part.startswith(FUSION_TAG)]
    return tags[0] if tags else None


def encoders_of(model_version: str) -> str:
    """The encoder part of a record's ``model_version`` (everything but the fusion tag), pure.

    >>> encoders_of("listing_embedder/1 fusion=fusion-20261127-83862b81")
    'listing_embedder/1'
    """
    return " ".join(part for part in model_version.split() if not part.startswith(FUSION_TAG))


def with_fusion_version(model_version: str, version: str) -> str:
    """``model_version`` naming ``version`` as its fusion (pure).

    >>> with_fusion_version("listing_embedder/1 fusion=fusion-a", "fusion-b")
    'listing_embedder/1 fusion=fusion-b'
    """
    return " ".join(part for part in (encoders_of(model_version), FUSION_TAG + version) if part)
