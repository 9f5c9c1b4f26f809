"""Training, export and evaluation of the learned fusion model (encoders frozen, their outputs cached)."""
