"""toyfuse: streaming multimodal embeddings for toy listings (Kafka -> Faust -> Triton -> Redis)."""

__version__ = "0.1.0"
