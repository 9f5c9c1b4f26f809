"""Converters from public datasets (Amazon Reviews 2023) into toyfuse events."""
