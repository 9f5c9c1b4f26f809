"""Dead-letter tooling: read ``toys.deadletter.v1`` back, list it, and replay each record once."""
