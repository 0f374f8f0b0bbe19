"""Check that raw webhook bodies and Kinesis/NDJSON records become the right Parsed, or the right error."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tracker.ingest.parsing import (
    NotJSONObjectError,
    Parsed,
    SchemaError,
    parse_data,
    parse_object,
    parse_record,
    parse_webhook_body,
)

from .spec import load_schemas

SCHEMAS = load_schemas()

# The spec has no example for config/configURL/lastConfig/lastConfigURL, which a oneOf requires.
STAND_INS = {"config": {"read": {"objects": {"account": {"objectName": "account"}}}}, "lastConfig": {}}


def spec_example(schema: dict[str, Any]) -> dict[str, Any]:
    """Collect the property examples of a data schema through its `$ref`s and `allOf` parts."""
    if "$ref" in schema:
        return spec_example(SCHEMAS[schema["$ref"].rsplit("/", 1)[1]])
    data = {name: prop["example"] for name, prop in schema.get("properties", {}).items() if "example" in prop}
    if "oneOf" in schema:
        data |= {name: STAND_INS[name] for name in schema["oneOf"][0]["required"]}
    for part in schema.get("allOf", []):
        data |= spec_example(part)
    return data


SPEC_EXAMPLES = {
    schema["properties"]["notificationType"]["enum"][0]: spec_example(schema["properties"]["data"])
    for name, schema in SCHEMAS.items()
    if name.endswith("NotificationPayload")
}
INSTALLATION = spec_example(SCHEMAS["InstallationFields"])
CONNECTION = SPEC_EXAMPLES["connection.created"]
SIGNED_URL = "https://storage.example.com/config.json?X-Goog-Signature=abc123"


def webhook(notification_type: str, data: object) -> bytes:
    return orjson.dumps({"notificationType": notification_type, "data": data})


def test_examples_cover_the_fifteen_types() -> None:
    assert len(SPEC_EXAMPLES) == 15
    assert SPEC_EXAMPLES["installation.updated"]["lastConfig"] == {}


@pytest.mark.parametrize("notification_type", sorted(SPEC_EXAMPLES))
def test_spec_example_parses_from_a_webhook_body(notification_type: str) -> None:
    data = SPEC_EXAMPLES[notification_type]
    parsed = parse_webhook_body(webhook(notification_type, data))
    assert parsed == Parsed(notification_type, data, recognized=True, metadata={})


@pytest.mark.parametrize("notification_type", sorted(SPEC_EXAMPLES))
def test_spec_example_parses_from_a_kinesis_record(notification_type: str) -> None:
    data = SPEC_EXAMPLES[notification_type]
    metadata = {"event-id": "evt-1", "timestamp": "1767225600", "topic": notification_type}
    parsed = parse_object({"metadata": metadata, "data": data})
    assert parsed == Parsed(notification_type, data, recognized=True, metadata=metadata)


@pytest.mark.parametrize("notification_type", sorted(SPEC_EXAMPLES))
def test_spec_example_parses_as_bare_data(notification_type: str) -> None:
    data = SPEC_EXAMPLES[notification_type]
    parsed = parse_data(notification_type, data)
    assert parsed == Parsed(notification_type, data, recognized=True, metadata={})


def test_data_is_kept_as_received_not_as_the_model_dumps_it() -> None:
    data = INSTALLATION | {"futureField": {"nested": [1, None]}, "objectName": "Account"}
    parsed = parse_webhook_body(webhook("read.backfill.done", data))
    assert parsed.data == data
    assert list(parsed.data) == list(data)


def test_config_and_config_url_together_are_accepted() -> None:
    data = INSTALLATION | {"config": {"read": {}}, "configURL": SIGNED_URL}
    assert parse_webhook_body(webhook("installation.created", data)).data == data


def test_empty_config_next_to_config_url_is_accepted() -> None:
    data = INSTALLATION | {"config": {}, "configURL": SIGNED_URL}
    parsed = parse_webhook_body(webhook("installation.created", data))
    assert parsed.data["config"] == {}
    assert parsed.data["configURL"] == SIGNED_URL


def test_installation_created_without_config_or_url_is_a_schema_error() -> None:
    with pytest.raises(SchemaError) as exc:
        parse_webhook_body(webhook("installation.created", INSTALLATION))
    assert exc.value.notification_type == "installation.created"
    assert exc.value.problems == ["data: needs config or configURL (at least one)"]


def test_installation_updated_without_last_config_is_a_schema_error() -> None:
    data = INSTALLATION | {"config": {}}
    with pytest.raises(SchemaError) as exc:
        parse_webhook_body(webhook("installation.updated", data))
    assert exc.value.problems == ["data: needs lastConfig or lastConfigURL (at least one)"]


def test_missing_required_field_is_named() -> None:
    data = {k: v for k, v in CONNECTION.items() if k != "connectionId"}
    with pytest.raises(SchemaError) as exc:
        parse_webhook_body(webhook("connection.deleted", data))
    assert exc.value.problems == ["data.connectionId: Field required"]
    assert str(exc.value) == "connection.deleted does not match its schema: data.connectionId: Field required"


def snake_case(data: dict[str, Any], key: str, renamed: str) -> dict[str, Any]:
    return {renamed if name == key else name: value for name, value in data.items()}


@pytest.mark.parametrize("shape", ["webhook", "kinesis"])
def test_a_snake_case_connection_id_is_a_schema_error_naming_the_wire_name(shape: str) -> None:
    data = snake_case(CONNECTION, "connectionId", "connection_id")
    raw = webhook("connection.created", data)
    if shape == "kinesis":
        raw = orjson.dumps({"metadata": {"topic": "connection.created"}, "data": data})
    with pytest.raises(SchemaError) as exc:
        parse_record(raw)
    assert exc.value.notification_type == "connection.created"
    assert exc.value.problems == ["data.connectionId: Field required"]


def test_a_snake_case_project_id_is_a_schema_error() -> None:
    data = snake_case(INSTALLATION, "projectId", "project_id") | {"config": {}}
    with pytest.raises(SchemaError) as exc:
        parse_webhook_body(webhook("installation.created", data))
    assert exc.value.problems == ["data.projectId: Field required"]


def test_a_snake_case_config_url_is_no_config() -> None:
    data = INSTALLATION | {"config_url": SIGNED_URL}
    with pytest.raises(SchemaError) as exc:
        parse_webhook_body(webhook("installation.created", data))
    assert exc.value.problems == ["data: needs config or configURL (at least one)"]


def test_every_problem_is_listed() -> None:
    data = CONNECTION | {"errors": ["ok", 7]}
    del data["provider"]
    with pytest.raises(SchemaError) as exc:
        parse_webhook_body(webhook("connection.error", data))
    assert exc.value.problems == [
        "data.provider: Field required",
        "data.errors.1: Input should be a valid string",
    ]


def test_unknown_type_is_kept_unrecognized() -> None:
    data = {"installationId": "inst-1", "anything": [1, {"b": None}]}
    parsed = parse_webhook_body(webhook("installation.paused", data))
    assert parsed == Parsed("installation.paused", data, recognized=False, metadata={})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "body is not valid JSON"),
        (b"\xff\xfe{}", "body is not valid JSON"),
        (b"", "body is not valid JSON"),
        (b'[{"notificationType": "connection.created"}]', "body must be a JSON object, got an array"),
        (b'"installation.created"', "body must be a JSON object, got a string"),
        (b"null", "body must be a JSON object, got null"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(NotJSONObjectError, match=message):
        parse_webhook_body(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": CONNECTION}, "body lacks notificationType; expected"),
        ({"notificationType": "connection.created"}, "body lacks data; expected"),
        ({}, "body lacks notificationType and data"),
        ({"notificationType": 3, "data": CONNECTION}, "must be a non-empty string, got a number"),
        ({"notificationType": "", "data": CONNECTION}, "must be a non-empty string, got a string"),
    ],
)
def test_a_body_without_type_or_data_is_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(NotJSONObjectError, match=message):
        parse_webhook_body(orjson.dumps(body))


def test_a_webhook_body_in_the_kinesis_shape_is_refused() -> None:
    record = {"metadata": {"notificationType": "connection.created"}, "data": CONNECTION}
    with pytest.raises(NotJSONObjectError, match="body lacks notificationType"):
        parse_webhook_body(orjson.dumps(record))


def test_known_type_with_non_object_data_is_a_schema_error() -> None:
    with pytest.raises(SchemaError) as exc:
        parse_webhook_body(webhook("connection.created", [CONNECTION]))
    assert exc.value.problems == ["data: must be a JSON object, got an array"]


def test_unknown_type_with_non_object_data_is_refused() -> None:
    with pytest.raises(NotJSONObjectError, match="data must be a JSON object, got a string"):
        parse_webhook_body(webhook("installation.paused", "inst-1"))


def test_object_in_the_webhook_shape_parses() -> None:
    parsed = parse_object({"notificationType": "connection.refreshed", "data": CONNECTION})
    assert parsed == Parsed("connection.refreshed", CONNECTION, recognized=True, metadata={})


def test_kinesis_type_from_metadata_notification_type_wins_over_topic() -> None:
    metadata = {"event-id": "evt-2", "notificationType": "connection.updated", "topic": "ampersand"}
    parsed = parse_object({"metadata": metadata, "data": CONNECTION})
    assert parsed.notification_type == "connection.updated"
    assert parsed.metadata == metadata


def test_kinesis_type_from_metadata_topic() -> None:
    metadata = {"event-id": "evt-3", "topic": "connection.deleted"}
    parsed = parse_object({"metadata": metadata, "data": CONNECTION})
    assert parsed == Parsed("connection.deleted", CONNECTION, recognized=True, metadata=metadata)


@pytest.mark.parametrize("metadata", [{"event-id": "evt-4"}, {"notificationType": None, "topic": ""}])
def test_kinesis_record_without_a_type_is_refused(metadata: dict[str, Any]) -> None:
    with pytest.raises(NotJSONObjectError) as exc:
        parse_object({"metadata": metadata, "data": CONNECTION})
    assert str(exc.value) == "no notification type in metadata.notificationType or metadata.topic"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([CONNECTION], "a notification must be a JSON object, got an array"),
        ({"data": CONNECTION}, "object has neither notificationType nor metadata"),
        (
            {"metadata": "connection.created", "data": CONNECTION},
            "metadata must be a JSON object, got a string",
        ),
        ({"metadata": {"topic": "connection.created"}}, "record has no data"),
    ],
)
def test_object_that_is_not_a_notification_is_refused(obj: object, message: str) -> None:
    with pytest.raises(NotJSONObjectError, match=message):
        parse_object(obj)


def test_kinesis_record_with_bad_data_is_a_schema_error() -> None:
    with pytest.raises(SchemaError) as exc:
        parse_object({"metadata": {"topic": "read.triggered.done"}, "data": INSTALLATION})
    assert exc.value.problems == ["data.objectName: Field required"]


def test_bare_data_keeps_the_metadata_given() -> None:
    metadata = {"shard": "shardId-000", "sequenceNumber": "4959"}
    assert parse_data("connection.created", CONNECTION, metadata).metadata == metadata


def test_connection_error_with_error_as_an_array() -> None:
    data = CONNECTION | {"error": ["Authentication failed", "Token refresh error"]}
    parsed = parse_webhook_body(webhook("connection.error", data))
    assert parsed.data["error"] == ["Authentication failed", "Token refresh error"]
    with pytest.raises(SchemaError) as exc:
        parse_webhook_body(webhook("connection.error", CONNECTION | {"error": "Authentication failed"}))
    assert exc.value.problems == ["data.error: Input should be a valid list"]


def test_write_async_done_partial_failure() -> None:
    data = INSTALLATION | {
        "objectName": "Account",
        "success": False,
        "successfulRecordIds": ["rec-1", "rec-2"],
        "errors": ["field validation failed"],
    }
    parsed = parse_webhook_body(webhook("write.async.done", data))
    assert parsed == Parsed("write.async.done", data, recognized=True, metadata={})


@pytest.mark.parametrize(
    "record",
    [
        {"notificationType": "future.type", "data": {"note": "a\u0000b"}},
        {"metadata": {"topic": "future.type"}, "data": {"note": "a\u0000b"}},
        {"metadata": {"topic": "future.type", "note": "a\u0000b"}, "data": {}},
    ],
    ids=["webhook shape", "kinesis shape", "kinesis metadata"],
)
def test_a_record_with_a_nul_character_is_a_schema_error_in_either_shape(record: dict[str, Any]) -> None:
    """The record's bytes are scanned for the escape first; one that has it is walked and refused."""
    with pytest.raises(SchemaError, match="NUL character"):
        parse_record(orjson.dumps(record))
