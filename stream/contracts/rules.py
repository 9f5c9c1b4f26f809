"""Field rules the JSON Schemas cannot state: strict JSON, clean Unicode text, exact integers, a sane time."""

import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from stream.contracts.schemas import LISTINGS_SCHEMA, REVIEWS_SCHEMA, format_rfc3339, parse_rfc3339
from stream.errors import InvalidEventError, SchemaError

EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)  # how far ahead of the consumer a producer's clock may run
MAX_DEPTH = 16  # deepest nesting any schema allows is 3; deeper input is refused before it is walked
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tab, LF and CR allowed
_SURROGATE = re.compile("[\ud800-\udfff]")
# Letters that render as nothing (Hangul fillers, braille blank); whitespace and format characters
# (category Cf: zero-width space and joiners, BOM, soft hyphen, bidi marks) are invisible too.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_EXCERPT = 40


@dataclass(frozen=True)
class TextRules:
    """Which top-level fields of a topic hold human text (NFC-normalised) and which may span lines."""

    text: frozenset[str]
    multiline: frozenset[str]


TEXT_RULES = {
    LISTINGS_SCHEMA: TextRules(
        frozenset({"title", "description", "brand", "categories", "attributes"}), frozenset({"description"})
    ),
    REVIEWS_SCHEMA: TextRules(frozenset({"title", "text"}), frozenset({"text"})),
}


def parse_json(label: str, value: bytes) -> object:
    """Decode strict JSON: UTF-8, no NaN/Infinity literals, every key once per object.

    Raises:
        InvalidEventError: ``invalid_utf8`` or ``invalid_json``, saying where and why.
    """
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEventError(
            "invalid_utf8",
            f"{label} is not UTF-8 ({exc.reason} at byte {exc.start}); encode values as UTF-8 JSON",
        ) from exc
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise InvalidEventError(
            "invalid_json",
            f"{label} has the key {exc.key!r} twice in one object; send each key once "
            "(JSON parsers disagree on which one wins)",
        ) from exc
    except json.JSONDecodeError as exc:
        raise InvalidEventError(
            "invalid_json",
            f"{label} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); send one JSON object",
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise InvalidEventError("invalid_json", f"{label} is not JSON ({exc}); send one JSON object") from exc


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def _reject_constant(token: str) -> None:
    raise ValueError(f"{token} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def clean(label: str, obj: object, rules: TextRules) -> object:
    """Refuse unsafe strings and numbers anywhere in ``obj``; return it with its text fields in NFC.

    Every string and key is checked for lone surrogates and control characters (tab, newline and
    carriage return are allowed in ``rules.multiline`` fields); every float must be finite.

    Raises:
        InvalidEventError: ``invalid_field`` naming the field, or ``schema_violation`` for deep nesting.
    """
    if not isinstance(obj, dict):
        return _walk(label, obj, "", 0, normalise=False, multiline=False)
    return {
        _text(label, key, key, normalise=False, multiline=False): _walk(
            label, value, key, 1, normalise=key in rules.text, multiline=key in rules.multiline
        )
        for key, value in obj.items()
    }


def _walk(label: str, value: object, path: str, depth: int, *, normalise: bool, multiline: bool) -> object:
    if depth > MAX_DEPTH:
        raise InvalidEventError(
            "schema_violation",
            f"{_where(label, path)}: nested deeper than {MAX_DEPTH} levels; send a flat event",
        )
    if isinstance(value, str):
        return _text(label, path, value, normalise=normalise, multiline=multiline)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidEventError(
            "invalid_field",
            f"{_where(label, path)}: the number is outside the float64 range (about ±1.8e308); send a finite number",
        )
    if isinstance(value, list):
        return [
            _walk(label, item, f"{path}[{i}]", depth + 1, normalise=normalise, multiline=multiline)
            for i, item in enumerate(value)
        ]
    if isinstance(value, dict):
        return _object(label, value, path, depth, normalise=normalise)
    return value


def _object(label: str, value: dict[str, Any], path: str, depth: int, *, normalise: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        clean_key = _text(label, path, key, normalise=normalise, multiline=False)
        if clean_key in out:
            raise InvalidEventError(
                "invalid_field",
                f"{_where(label, path)}: keys {key!r} and {clean_key!r} are the same text after Unicode NFC "
                "normalisation; send each key once",
            )
        child = f"{path}.{clean_key}" if path else clean_key
        out[clean_key] = _walk(label, item, child, depth + 1, normalise=normalise, multiline=False)
    return out


def _text(label: str, path: str, text: str, *, normalise: bool, multiline: bool) -> str:
    surrogate = _SURROGATE.search(text)
    if surrogate:
        raise InvalidEventError(
            "invalid_field",
            f"{_where(label, path)}: lone surrogate {_code(surrogate.group())} at position {surrogate.start()} "
            "is not a Unicode character; send valid text (a \\ud83d-style escape needs its low surrogate)",
        )
    control = (_CONTROL_MULTILINE if multiline else _CONTROL).search(text)
    if control:
        allowed = (
            "only tab, newline and carriage return are allowed here" if multiline else "none is allowed here"
        )
        raise InvalidEventError(
            "invalid_field",
            f"{_where(label, path)}: control character {_code(control.group())} at position {control.start()}; "
            f"remove control characters ({allowed})",
        )
    return unicodedata.normalize("NFC", text) if normalise else text


def integer_limits(schema: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """(minimum, maximum) of every top-level integer field of a JSON Schema, e.g. ``version``.

    Raises:
        SchemaError: an integer field has no minimum or maximum (every number must be bounded).
    """
    limits = {}
    for name, spec in schema.get("properties", {}).items():
        if spec.get("type") != "integer":
            continue
        if "minimum" not in spec or "maximum" not in spec:
            raise SchemaError(
                f"schema {schema.get('$id')}: integer field {name!r} needs a minimum and a maximum; add them"
            )
        limits[name] = (int(spec["minimum"]), int(spec["maximum"]))
    return limits


def check_integers(label: str, obj: Mapping[str, Any], limits: Mapping[str, tuple[int, int]]) -> None:
    """Refuse integer fields written with a fraction or exponent (``1.0``, ``1e2``): they are floats.

    Args:
        label: the event's name in messages.
        obj: the schema-valid event.
        limits: integer field name -> (minimum, maximum), from the schema.

    Raises:
        InvalidEventError: ``invalid_field`` naming the field and its range.
    """
    for name, (low, high) in limits.items():
        value = obj.get(name)
        if isinstance(value, float):
            raise InvalidEventError(
                "invalid_field",
                f"{_where(label, name)}: {value!r} is written with a fraction or exponent; "
                f"send a plain JSON integer from {low} to {high}",
            )


def check_occurred_at(label: str, text: str, now: datetime) -> datetime:
    """Parse ``occurred_at`` and refuse it before 2000 or more than a day after ``now``.

    Raises:
        InvalidEventError: ``invalid_field`` naming the field and the window.
    """
    moment = parse_rfc3339(text)
    if moment < EARLIEST_OCCURRED_AT:
        raise InvalidEventError(
            "invalid_field",
            f"{_where(label, 'occurred_at')}: {text} is before {format_rfc3339(EARLIEST_OCCURRED_AT)}, "
            "the earliest accepted time; send when the change happened",
        )
    if moment > now + MAX_CLOCK_SKEW:
        raise InvalidEventError(
            "invalid_field",
            f"{_where(label, 'occurred_at')}: {text} is more than 1 day after the consumer's clock "
            f"({format_rfc3339(now)}); send when the change happened and keep the producer's clock in sync",
        )
    return moment


def check_visible(label: str, name: str, text: str) -> None:
    """Refuse a text with nothing visible once whitespace and zero-width characters are removed.

    Raises:
        InvalidEventError: ``invalid_field`` naming the field.
    """
    if not any(_visible(char) for char in text):
        raise InvalidEventError(
            "invalid_field",
            f"{_where(label, name)}: {_excerpt(text)} has no visible character once whitespace and "
            "zero-width characters are removed; send a real title",
        )


def _visible(char: str) -> bool:
    return not char.isspace() and unicodedata.category(char) != "Cf" and char not in _BLANK_LETTERS


def utc_now() -> datetime:
    """The consumer's clock (the default of :class:`stream.contracts.events.EventDecoder`)."""
    return datetime.now(UTC)


Clock = Callable[[], datetime]


def _where(label: str, path: str) -> str:
    return f"{label} field '{path}'" if path else label


def _code(char: str) -> str:
    return f"U+{ord(char):04X}"


def _excerpt(text: str) -> str:
    return repr(text[:_EXCERPT]) + ("..." if len(text) > _EXCERPT else "")
