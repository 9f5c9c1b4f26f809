"""A vector set in Redis against the layout that writes to it.

Redis fixes a set's quantisation, links per node (``M``) and dimensions when the set is created, and
refuses every later ``VADD`` that asks for others ("asked M value mismatch with existing vector set"). A
layout edited while its set exists would fail every upsert, so the worker compares them before it
consumes (:meth:`stream.store.listings.EmbeddingStore.check_vector_sets`).
"""

from collections.abc import Mapping
from typing import Any

from stream.contracts.index import IndexSchema
from stream.store.replies import reply_text

QUANTIZATION_OF = {"int8": "Q8", "f32": "NOQUANT", "bin": "BIN"}  # VINFO quant-type -> its VADD option
# What to do about a set built otherwise, said by every VectorSetMismatch.
REBUILD_ADVICE = (
    "Redis fixes a set's quantization and M when it is created and refuses every insert that asks for "
    "others: set schemas/embedding_index.yaml search back to how the set was built, or stop the workers, "
    "delete the set and re-embed from the source topics"
)


def built_otherwise(schema: IndexSchema, info: Mapping[bytes, Any]) -> list[str]:
    """How the set ``info`` describes (its ``VINFO`` reply) differs from what ``schema`` builds, pure.

    >>> from stream.contracts.shapes import INDEX
    >>> built_otherwise(INDEX, {b"quant-type": b"int8", b"hnsw-m": 16, b"vector-dim": 256})
    []
    >>> built_otherwise(INDEX, {b"quant-type": b"bin", b"hnsw-m": 8, b"vector-dim": 256})
    ['quantization BIN, not Q8', 'build_m 8, not 16']
    """
    quant_type = reply_text(info.get(b"quant-type", b""))
    built = {
        "quantization": QUANTIZATION_OF.get(quant_type, quant_type),
        "build_m": int(info.get(b"hnsw-m", 0)),
        "dims": int(info.get(b"vector-dim", 0)),
    }
    asked = {
        "quantization": schema.search.quantization,
        "build_m": schema.search.build_m,
        "dims": schema.vectors[schema.search.vector].dims,
    }
    return [f"{name} {built[name]}, not {asked[name]}" for name in asked if built[name] != asked[name]]
