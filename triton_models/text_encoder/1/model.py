"""Triton Python-backend model: all-MiniLM-L6-v2 text embeddings (mean pooling, L2-normalised)."""

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import triton_python_backend_utils as pb_utils

from stream.encoders.batching import embed_in_length_groups
from stream.encoders.export import TEXT_ENCODER
from stream.encoders.networks import text_tokenizer
from stream.encoders.served import encoder_runner
from stream.model.serving import (
    BatchedExecute,
    decode_texts,
    device,
    onnx_cache_dir,
    output_dtypes,
    parameters,
)


class TritonPythonModel:
    """Embeds each request's UTF-8 strings; a dynamic batch runs as one, errors kept per request."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        params = parameters(config)
        self.max_tokens = int(params["max_tokens"])
        self.group_size = int(params["group_size"])
        self.tokenizer = text_tokenizer()
        self.encoder = encoder_runner(
            TEXT_ENCODER,
            device(args),
            onnx_cache_dir(args),
            params["precision"],
            int(params["intra_op_threads"]),
        )
        dtypes = output_dtypes(pb_utils, config, ["TEXT_EMBEDDING"])
        self.batched = BatchedExecute(pb_utils, "text_encoder", ("TEXT",), dtypes, self._embed)

    def execute(self, requests: list[Any]) -> list[Any]:
        return self.batched(requests)

    def _embed(self, text: npt.NDArray[np.object_]) -> tuple[npt.NDArray[np.float32]]:
        token_ids = self.tokenizer(decode_texts(text), truncation=True, max_length=self.max_tokens)[
            "input_ids"
        ]
        return (
            embed_in_length_groups(self.encoder, token_ids, self.tokenizer.pad_token_id, self.group_size),
        )
