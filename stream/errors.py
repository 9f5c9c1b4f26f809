"""Exceptions raised by toyfuse; every message says what happened and how to fix it.

FeatureServiceError
├── SettingsError
├── StackError
│   ├── MissingToolError
│   ├── PortBusyError
│   └── ServerStartError
├── SchemaError
├── InvalidEventError
├── CatalogError
├── TritonError
│   └── TritonUnavailable
├── EmbeddingDimMismatch
├── StoreError
│   ├── StoreUnavailable
│   ├── VectorSetMismatch
│   ├── ReviewLayoutOutdated
│   └── WorkersRunning
├── ListingNotFound
├── MediaError
├── DeadLetterError
├── ExportRefused
└── RolloutError
    └── ReembedRequired
"""

from typing import Literal


class FeatureServiceError(Exception):
    """Root of every error toyfuse raises on purpose."""


class SettingsError(FeatureServiceError):
    """A setting is missing or inconsistent."""


class StackError(FeatureServiceError):
    """The local stack (Kafka, Redis, Triton) could not be started, checked or stopped."""


class MissingToolError(StackError):
    """A program the stack needs (java, mvn, a server binary) is not installed."""


class PortBusyError(StackError):
    """A port the stack wants is already taken by another process."""


class ServerStartError(StackError):
    """A server exited or never became ready during start-up."""


class SchemaError(FeatureServiceError):
    """An event schema file is missing, unreadable or unknown."""


# Machine-readable reasons of toys.deadletter.v1 records.
DeadLetterReason = Literal[
    "invalid_json", "invalid_utf8", "schema_violation", "key_mismatch", "invalid_field", "processing_error"
]


class InvalidEventError(FeatureServiceError):
    """An event does not match its schema; ``reason`` is machine-readable."""

    def __init__(self, reason: DeadLetterReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class CatalogError(FeatureServiceError):
    """The sample catalog cannot be generated with the given parameters."""


class TritonError(FeatureServiceError):
    """Triton answered a request with an error (bad input, model failure)."""


class TritonUnavailable(TritonError):
    """Triton could not be reached, is not ready, or timed out; retrying later can succeed."""


class EmbeddingDimMismatch(FeatureServiceError):
    """A vector does not have the dimension the embedding index declares."""


class StoreError(FeatureServiceError):
    """Redis rejected a write or a query."""


class StoreUnavailable(StoreError):
    """Redis could not be reached or timed out; retrying later can succeed."""


class VectorSetMismatch(StoreError):
    """A vector set in Redis was built otherwise than the layout says, so Redis would refuse every insert."""


class ReviewLayoutOutdated(StoreError):
    """Redis holds review keys of the single-server layout, which a worker of today's layout would not see."""


class WorkersRunning(StoreError):
    """A store step that needs every worker stopped found workers consuming, or could not tell."""


class ListingNotFound(FeatureServiceError):
    """No embedding is stored for the listing."""


MediaFailure = Literal[
    "unsupported_scheme",
    "invalid_uri",
    "forbidden_userinfo",
    "forbidden_address",
    "too_many_redirects",
    "connection",
    "timeout",
    "http_status",
    "content_type",
    "too_large",
    "undecodable_image",
    "too_many_pixels",
    "undecodable_video",
    "too_many_frames",
]


class MediaError(FeatureServiceError):
    """A photo or video could not be fetched or decoded; ``reason`` is machine-readable."""

    def __init__(self, reason: MediaFailure, message: str) -> None:
        super().__init__(message)
        self.reason: MediaFailure = reason
        self.message = message


class DeadLetterError(FeatureServiceError):
    """The dead-letter topic could not be read or replayed (Kafka down, topic missing, ledger busy)."""


class ExportRefused(FeatureServiceError):
    """``toyfuse export`` kept a model out of the repository: it loses to a baseline on validation."""


class RolloutError(FeatureServiceError):
    """A fusion model rollout cannot start, switch or finish in the state it is in."""


class ReembedRequired(RolloutError):
    """The new model changes what the stored vectors are (video pooling or an encoder): re-embed instead."""
