"""Turn a webhook body or a Kinesis/NDJSON record into a validated notification, without I/O.

The decoded `data` is kept exactly as received: the models only check it, so fields the spec does not
know yet survive into the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from tracker.domain.base import OWN_PREFIX
from tracker.models import KNOWN_TYPES, NOTIFICATION

MAX_TYPE_LENGTH = 128
"""A longer notificationType is not one of Ampersand's: refuse it rather than index it."""
MAX_DEPTH = 64
"""Deepest nesting of arrays and objects kept in `data` or `metadata`. The log's JSON encoder (orjson)
stops at 255 levels, while its decoder reads 1,024: deeper input would fail at the append, as a 500 that
Svix retries for ever. Ampersand's payloads nest a handful of levels."""


class NotJSONObjectError(ValueError):
    """The input is not a notification at all: not JSON, not an object, or no type or data."""


class SchemaError(ValueError):
    """A known notification type whose data fails its schema."""

    notification_type: str
    problems: list[str]
    """One line per problem, e.g. "data.installationId: Field required"; sent back to the sender."""

    def __init__(self, notification_type: str, problems: list[str]) -> None:
        msg = f"{notification_type} does not match its schema: {'; '.join(problems)}"
        super().__init__(msg)
        self.notification_type = notification_type
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Parsed:
    """A notification checked against its schema, ready to store."""

    notification_type: str
    data: dict[str, Any]
    """The data object as decoded, not a model dump: what the log stores."""
    recognized: bool
    """False for a type outside KNOWN_TYPES: stored all the same, never rejected."""
    metadata: dict[str, Any]
    """Kinesis/Outpost metadata (event-id, topic, timestamp, ...) when the input had it, else {}."""


def parse_webhook_body(body: bytes) -> Parsed:
    """Parse a webhook body, `{"notificationType": ..., "data": {...}}`."""
    obj = _decode(body, "body is not valid JSON")
    if not isinstance(obj, dict):
        msg = f"body must be a JSON object, got {_json_kind(obj)}"
        raise NotJSONObjectError(msg)
    # JSON can only carry a NUL as the escape \u0000: without it in the bytes, no string needs a look.
    return _parse_webhook_shape(obj, where="body", check_nul=b"\\u0000" in body, check_depth=_may_be_deep(body))


def refuse_as_not_json(reason: str) -> Callable[[bytes], Parsed]:
    """A parse that refuses whatever it is given: for a caller's value that never became JSON."""

    def refuse(raw: bytes) -> Parsed:
        raise NotJSONObjectError(reason)

    return refuse


def parse_record(raw: bytes) -> Parsed:
    """Parse one JSON document in either shape (an NDJSON line, a Kinesis record, an API call)."""
    return parse_object(_decode(raw, "not valid JSON"), check_depth=_may_be_deep(raw), check_nul=b"\\u0000" in raw)


def _may_be_deep(raw: bytes) -> bool:
    """Whether the JSON text has enough brackets to nest past MAX_DEPTH: a scan in C spares most
    notifications the walk."""
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH


def _decode(raw: bytes, problem: str) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = f"{problem}: {exc}"
        raise NotJSONObjectError(msg) from None


def parse_object(obj: object, *, check_depth: bool = True, check_nul: bool = True) -> Parsed:
    """Parse a decoded JSON value in the webhook shape or the Kinesis/Outpost `{"metadata", "data"}` shape.

    A top-level `notificationType` marks the webhook shape; otherwise the type is read from
    `metadata.notificationType`, then `metadata.topic` (where Outpost puts it is not documented).
    """
    if not isinstance(obj, dict):
        msg = f"a notification must be a JSON object, got {_json_kind(obj)}"
        raise NotJSONObjectError(msg)
    if "notificationType" in obj:
        return _parse_webhook_shape(obj, where="object", check_nul=check_nul, check_depth=check_depth)
    if "metadata" not in obj:
        msg = (
            "object has neither notificationType nor metadata; expected"
            ' {"notificationType": ..., "data": {...}} or {"metadata": {...}, "data": {...}}'
        )
        raise NotJSONObjectError(msg)
    metadata = obj["metadata"]
    if not isinstance(metadata, dict):
        msg = f"metadata must be a JSON object, got {_json_kind(metadata)}"
        raise NotJSONObjectError(msg)
    notification_type = _type_from_metadata(metadata)
    if "data" not in obj:
        msg = "record has no data"
        raise NotJSONObjectError(msg)
    return parse_data(notification_type, obj["data"], metadata, check_nul=check_nul, check_depth=check_depth)


def parse_data(
    notification_type: str,
    data: object,
    metadata: dict[str, Any] | None = None,
    *,
    check_nul: bool = True,
    check_depth: bool = True,
) -> Parsed:
    """Validate `data` for a type known from outside, as for a bare Kinesis data object.

    `data` that is not an object is a SchemaError (422) for a known type, whose schema it fails; for an
    unknown type there is no schema to fail, so it is a NotJSONObjectError (400): every notification
    carries an object.
    """
    if len(notification_type) > MAX_TYPE_LENGTH:
        msg = f"notificationType is longer than {MAX_TYPE_LENGTH} characters"
        raise NotJSONObjectError(msg)
    if notification_type.startswith(OWN_PREFIX):
        msg = f"notificationType {notification_type!r}: the prefix {OWN_PREFIX!r} is kept for operator actions"
        raise NotJSONObjectError(msg)
    recognized = notification_type in KNOWN_TYPES
    if not isinstance(data, dict):
        if recognized:
            raise SchemaError(notification_type, [f"data: must be a JSON object, got {_json_kind(data)}"])
        msg = f"data must be a JSON object, got {_json_kind(data)}"
        raise NotJSONObjectError(msg)
    if check_depth:  # first: the walks below recurse
        for name, value in (("data", data), ("metadata", metadata)):
            if _deeper_than(value, MAX_DEPTH):
                problem = f"{name}: arrays and objects nest more than {MAX_DEPTH} levels deep (the log stores fewer)"
                raise SchemaError(notification_type, [problem])
    try:
        NOTIFICATION.validate_python({"notificationType": notification_type, "data": data})
    except ValidationError as exc:
        raise SchemaError(notification_type, _problems(exc)) from None
    if check_nul:
        for name, value in (("data", data), ("metadata", metadata)):
            if (where := _nul_path(value, name)) is not None:
                problem = f"{where}: contains a NUL character (\\u0000), which PostgreSQL's jsonb cannot store"
                raise SchemaError(notification_type, [problem])
    return Parsed(notification_type, data, recognized, {} if metadata is None else metadata)


def _parse_webhook_shape(obj: dict[str, Any], where: str, check_nul: bool, check_depth: bool) -> Parsed:
    missing = [key for key in ("notificationType", "data") if key not in obj]
    if missing:
        expected = '{"notificationType": ..., "data": {...}}'
        msg = f"{where} lacks {' and '.join(missing)}; expected {expected}"
        raise NotJSONObjectError(msg)
    notification_type = obj["notificationType"]
    if not isinstance(notification_type, str) or not notification_type:
        msg = f"notificationType must be a non-empty string, got {_json_kind(notification_type)}"
        raise NotJSONObjectError(msg)
    return parse_data(notification_type, obj["data"], check_nul=check_nul, check_depth=check_depth)


def _deeper_than(value: object, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels in `value`; level by level, not recursive."""
    level = [value]
    for _ in range(limit):
        level = [child for item in level if isinstance(item, dict | list)
                 for child in (item.values() if isinstance(item, dict) else item)]  # fmt: skip
        if not level:
            return False
    return any(isinstance(item, dict | list) for item in level)


def _nul_path(value: object, path: str) -> str | None:
    """Where a NUL character hides in a decoded JSON value (keys included), if anywhere."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return path
            if (found := _nul_path(item, f"{path}.{key}")) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _nul_path(item, f"{path}[{index}]")) is not None:
                return found
    return None


def _type_from_metadata(metadata: dict[str, Any]) -> str:
    for key in ("notificationType", "topic"):
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return value
    msg = "no notification type in metadata.notificationType or metadata.topic"
    raise NotJSONObjectError(msg)


def _problems(exc: ValidationError) -> list[str]:
    # The first loc item is the union tag (the type itself), which the sender did not write.
    return [".".join(str(part) for part in error["loc"][1:]) + ": " + error["msg"] for error in exc.errors()]


def _json_kind(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
    return type(value).__name__
