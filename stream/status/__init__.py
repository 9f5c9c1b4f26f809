"""`toyfuse status`: the stack, the worker and its metrics on one screen (or as one JSON object)."""
