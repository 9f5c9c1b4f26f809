"""Triton clients: the batched listing embedder, the fusion model alone and the text encoders."""
