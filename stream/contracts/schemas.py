"""Load the topic JSON Schemas in ``schemas/`` and explain their violations in words."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError as JsonSchemaError
from jsonschema.exceptions import ValidationError, best_match

from stream.errors import SchemaError

LISTINGS_SCHEMA = "toys.listings.v1"
REVIEWS_SCHEMA = "toys.reviews.v1"
EMBEDDINGS_SCHEMA = "toys.embeddings.v1"
DEADLETTER_SCHEMA = "toys.deadletter.v1"
SCHEMA_NAMES = (LISTINGS_SCHEMA, REVIEWS_SCHEMA, EMBEDDINGS_SCHEMA, DEADLETTER_SCHEMA)
LABELS = {
    LISTINGS_SCHEMA: "listing event",
    REVIEWS_SCHEMA: "review event",
    EMBEDDINGS_SCHEMA: "embedding event",
    DEADLETTER_SCHEMA: "dead-letter record",
}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "integer", float: "number", bool: "boolean"}
_MAX_DETAIL = 300
_SIZES = {"maxLength": "characters", "maxItems": "items", "maxProperties": "properties"}


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp that must carry a time zone.

    Args:
        text: e.g. ``"2025-03-01T12:00:00Z"`` or ``"2025-03-01T13:00:00+01:00"``.

    Returns:
        A timezone-aware datetime.

    Raises:
        ValueError: if ``text`` is not an RFC 3339 date-time with a zone.
    """
    if not _RFC3339.match(text):
        raise ValueError(f"{text!r} is not an RFC 3339 date-time such as 2025-03-01T12:00:00Z")
    return datetime.fromisoformat(text.upper())


def format_rfc3339(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC, e.g. ``2025-03-01T12:00:00Z``.

    Raises:
        ValueError: if ``moment`` is naive (its zone would be a guess).
    """
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware; pass datetime.now(UTC) or similar")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _format_checker() -> FormatChecker:
    """A checker for the one format our schemas use; jsonschema skips ``date-time`` without extras."""
    checker = FormatChecker(formats=())
    checker.checks("date-time", raises=ValueError)(_is_date_time)
    return checker


def _is_date_time(instance: object) -> bool:
    """Formats apply to strings only: a null or a number is left to the schema's ``type`` rule."""
    if isinstance(instance, str):
        parse_rfc3339(instance)
    return True


def load_validators(schemas_dir: Path) -> dict[str, Draft202012Validator]:
    """Read and compile ``<name>.schema.json`` for every topic in ``SCHEMA_NAMES``.

    Args:
        schemas_dir: folder holding the schema files.

    Returns:
        Validators by schema name, each checking ``date-time`` formats.

    Raises:
        SchemaError: if a file is missing or not a valid JSON Schema.
    """
    checker = _format_checker()
    validators = {}
    for name in SCHEMA_NAMES:
        path = schemas_dir / f"{name}.schema.json"
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
            Draft202012Validator.check_schema(schema)
        except OSError as exc:
            raise SchemaError(
                f"cannot read schema {path}: {exc}; point schemas_dir at the repo's schemas/"
            ) from exc
        except (json.JSONDecodeError, JsonSchemaError) as exc:
            raise SchemaError(f"{path} is not a valid JSON Schema ({exc}); restore it from git") from exc
        validators[name] = Draft202012Validator(schema, format_checker=checker)
    return validators


def _json_path(error: ValidationError) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path]
    return "".join(parts).lstrip(".")


def _rule(error: ValidationError, root: object) -> str:
    """Describe the broken rule in words, preferring the schema's own description over a regex."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "format":
        return f"{error.instance!r} is not an RFC 3339 date-time with a time zone, e.g. 2025-03-01T12:00:00Z"
    if error.validator == "pattern" and "description" in schema:
        return f"{error.instance!r} is not valid: {schema['description']}"
    if error.validator in _SIZES and isinstance(error.instance, (str, list, dict)):
        return (
            f"{len(error.instance)} {_SIZES[error.validator]} is too many (at most {error.validator_value})"
        )
    if error.validator == "type" and not error.absolute_path:
        return f"expected a JSON object, got a JSON {_JSON_TYPES.get(type(error.instance), 'null')}"
    if "then" in error.absolute_schema_path and isinstance(root, dict):
        kind = root.get("type")
        if "propertyNames" in error.absolute_schema_path:
            return f"field {error.instance!r} is not allowed when type is {kind!r}"
        return f"{error.message} when type is {kind!r}"
    return str(error.message)


def first_violation(validator: Draft202012Validator, name: str, obj: object) -> str | None:
    """Explain the most relevant schema violation of ``obj``, or return None when it is valid.

    Args:
        validator: the compiled schema of ``name``.
        name: schema name, used in the message.
        obj: the decoded JSON value.

    Returns:
        A sentence such as ``"listing event field 'version': 0 is less than the minimum of 1;
        make the producer follow schemas/toys.listings.v1.schema.json"``, or None.
    """
    error = best_match(validator.iter_errors(obj))
    if error is None:
        return None
    path, detail = _json_path(error), _rule(error, obj)
    if len(detail) > _MAX_DETAIL:
        detail = detail[:_MAX_DETAIL] + "..."
    where = f"{LABELS[name]} field '{path}'" if path else LABELS[name]
    return f"{where}: {detail}; make the producer follow schemas/{name}.schema.json"
