"""Pure vector helpers: normalisation and the float32 byte layout stored in Redis."""

from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream.errors import EmbeddingDimMismatch

FloatArray = NDArray[np.float32]


def l2_normalize(vectors: NDArray[np.floating[Any]]) -> FloatArray:
    """Scale each row (or a single vector) to unit length; zero vectors stay zero.

    Args:
        vectors: one vector of shape (d,) or a batch of shape (n, d).

    Returns:
        float32 array of the same shape with unit L2 norm per vector.
    """
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return np.divide(array, norms, out=np.zeros_like(array), where=norms > 0)


def to_redis_bytes(vector: NDArray[np.floating[Any]]) -> bytes:
    """Encode one vector as little-endian float32 bytes (the layout of hashes and VADD FP32)."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_redis_bytes(blob: bytes, dims: int, name: str = "vector", multi: bool = False) -> FloatArray:
    """Decode little-endian float32 bytes, checking the dimension.

    Args:
        blob: bytes written by :func:`to_redis_bytes`.
        dims: expected dimension.
        name: what the vector is, for the error message.
        multi: the blob holds several vectors back to back; return them as rows [k, dims].

    Raises:
        EmbeddingDimMismatch: the blob does not hold exactly ``dims`` (or a multiple, if ``multi``) float32 values.
    """
    values, remainder = divmod(len(blob), 4 * dims)
    if remainder or (values != 1 and not multi):
        raise EmbeddingDimMismatch(
            f"{name} holds {len(blob)} bytes, expected {'a multiple of ' if multi else ''}{dims} float32 values "
            f"({dims * 4} bytes); the stored data was written under another schemas/embedding_index.yaml, "
            "re-embed the listing"
        )
    vectors = np.frombuffer(blob, dtype="<f4").astype(np.float32)
    return vectors.reshape(-1, dims) if multi else vectors


def cosine(a: NDArray[np.floating[Any]], b: NDArray[np.floating[Any]]) -> float:
    """Cosine similarity of two vectors (0.0 when either is zero)."""
    a32, b32 = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    denominator = float(np.linalg.norm(a32) * np.linalg.norm(b32))
    return float(a32 @ b32) / denominator if denominator else 0.0
