"""Reading Redis replies: toyfuse's clients keep raw bytes, while redis-py's types also allow str and int."""


def reply_text(value: bytes | str | int) -> str:
    """A Redis reply item as text (pure).

    >>> reply_text(b"toyfuse:similar:fused"), reply_text(16)
    ('toyfuse:similar:fused', '16')
    """
    return value.decode() if isinstance(value, bytes) else str(value)
