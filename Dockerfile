# toyfuse worker: the Faust app that embeds events through Triton and writes vectors to Redis.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY . .
# CPU torch: the worker never runs a model itself (Triton does), so skip the CUDA wheels.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -e .

EXPOSE 16066
CMD ["toyfuse", "worker"]
