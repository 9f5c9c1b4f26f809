"""Pure vector helpers."""

import numpy as np
import pytest

from stream.errors import EmbeddingDimMismatch
from stream.features.vectors import cosine, from_redis_bytes, l2_normalize, to_redis_bytes


def test_l2_normalize_rows_and_zero_vectors() -> None:
    normalized = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))

    np.testing.assert_allclose(normalized, [[0.6, 0.8], [0.0, 0.0]])
    assert normalized.dtype == np.float32


def test_redis_bytes_round_trip_is_exact_little_endian_float32() -> None:
    vector = np.array([1.5, -2.25, 3.0e-8], dtype=np.float32)
    blob = to_redis_bytes(vector)

    assert blob == np.array([1.5, -2.25, 3.0e-8], dtype="<f4").tobytes()
    np.testing.assert_array_equal(from_redis_bytes(blob, 3), vector)


def test_from_redis_bytes_names_a_wrong_dimension() -> None:
    with pytest.raises(EmbeddingDimMismatch, match="vec:text holds 8 bytes, expected 3 float32 values"):
        from_redis_bytes(b"\0" * 8, 3, "vec:text")


def test_cosine() -> None:
    assert cosine(np.array([1.0, 0.0]), np.array([0.6, 0.8])) == pytest.approx(0.6)
    assert cosine(np.zeros(2), np.ones(2)) == 0.0


def test_multi_vectors_decode_as_rows() -> None:
    rows = np.arange(6, dtype=np.float32).reshape(2, 3)

    np.testing.assert_array_equal(from_redis_bytes(to_redis_bytes(rows), 3, multi=True), rows)
    with pytest.raises(EmbeddingDimMismatch, match="expected a multiple of 3 float32 values"):
        from_redis_bytes(b"\0" * 8, 3, multi=True)
