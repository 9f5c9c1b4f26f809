"""Public contracts: the topics' event types and JSON Schemas, and the Redis index layout."""
