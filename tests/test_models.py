"""Check the wire models against Ampersand's spec file itself, so a drift in either shows up here."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from tracker.domain import connection, installation
from tracker.models import ENVELOPES, KNOWN_TYPES, NOTIFICATION, ConnectionFields, Unrecognized

from .spec import load_schemas

SCHEMAS = load_schemas()

# The spec gives no example for config, configURL, lastConfig or lastConfigURL; these stand in for them.
SAMPLE_CONFIG = {"read": {"objects": {"account": {"objectName": "account", "destination": "accountWebhook"}}}}
SIGNED_URL = "https://storage.example.com/config.json?X-Goog-Signature=abc123"


@dataclass(frozen=True)
class DataSchema:
    properties: dict[str, Any]
    required: frozenset[str]
    one_ofs: tuple[tuple[str, ...], ...]
    """Groups of properties of which the spec wants exactly one (the models accept one or more)."""


def flatten(schema: dict[str, Any]) -> DataSchema:
    """Merge a data schema's `$ref`s and `allOf` parts into one property list."""
    if "$ref" in schema:
        return flatten(SCHEMAS[schema["$ref"].rsplit("/", 1)[1]])
    properties = dict(schema.get("properties", {}))
    required = set(schema.get("required", []))
    one_ofs = []
    if "oneOf" in schema:
        one_ofs.append(tuple(name for branch in schema["oneOf"] for name in branch["required"]))
    for part in schema.get("allOf", []):
        merged = flatten(part)
        properties |= merged.properties
        required |= merged.required
        one_ofs.extend(merged.one_ofs)
    return DataSchema(properties, frozenset(required), tuple(one_ofs))


DATA_SCHEMAS: dict[str, DataSchema] = {
    schema["properties"]["notificationType"]["enum"][0]: flatten(schema["properties"]["data"])
    for name, schema in SCHEMAS.items()
    if name.endswith("NotificationPayload")
}


def stand_in(prop: dict[str, Any]) -> Any:
    return SAMPLE_CONFIG if prop["type"] == "object" else SIGNED_URL


def spec_examples(notification_type: str) -> list[dict[str, Any]]:
    """Build the type's data from the spec's property examples, once per choice in each oneOf."""
    schema = DATA_SCHEMAS[notification_type]
    base = {name: prop["example"] for name, prop in schema.properties.items() if "example" in prop}
    return [
        base | {name: stand_in(schema.properties[name]) for name in choice}
        for choice in itertools.product(*schema.one_ofs)
    ]


EXAMPLE_CASES = [
    pytest.param(notification_type, data, id=f"{notification_type}-{index}")
    for notification_type in sorted(DATA_SCHEMAS)
    for index, data in enumerate(spec_examples(notification_type))
]
FIRST_EXAMPLE = {notification_type: spec_examples(notification_type)[0] for notification_type in DATA_SCHEMAS}


def validate(notification_type: str, data: dict[str, Any]) -> Any:
    return NOTIFICATION.validate_python({"notificationType": notification_type, "data": data})


def error_locs(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[int | str, ...]]:
    return [error["loc"] for error in exc.value.errors()]


def data_model(notification_type: str) -> type[BaseModel]:
    return type(validate(notification_type, FIRST_EXAMPLE[notification_type]).data)


def test_known_types_are_the_fifteen_in_the_spec() -> None:
    assert len(DATA_SCHEMAS) == 15
    assert frozenset(DATA_SCHEMAS) == KNOWN_TYPES


def test_every_oneof_alternative_lacks_an_example() -> None:
    # Why the stand-ins exist; if the spec adds examples, use them instead.
    alternatives = {name for schema in DATA_SCHEMAS.values() for group in schema.one_ofs for name in group}
    assert alternatives == {"config", "configURL", "lastConfig", "lastConfigURL"}
    assert all(
        "example" not in schema.properties[name]
        for schema in DATA_SCHEMAS.values()
        for name in alternatives & schema.properties.keys()
    )


@pytest.mark.parametrize(("notification_type", "data"), EXAMPLE_CASES)
def test_spec_example_validates_and_round_trips(notification_type: str, data: dict[str, Any]) -> None:
    notification = validate(notification_type, data)
    assert not isinstance(notification, Unrecognized)
    assert notification.notification_type == notification_type
    assert notification.data.model_dump(by_alias=True, exclude_unset=True) == data


@pytest.mark.parametrize("notification_type", sorted(DATA_SCHEMAS))
def test_wire_names_are_the_spec_properties(notification_type: str) -> None:
    fields = data_model(notification_type).model_fields.values()
    assert {field.alias for field in fields} == set(DATA_SCHEMAS[notification_type].properties)


@pytest.mark.parametrize(
    ("notification_type", "field"),
    [(t, field) for t in sorted(DATA_SCHEMAS) for field in sorted(DATA_SCHEMAS[t].required)],
)
def test_each_required_field_is_required(notification_type: str, field: str) -> None:
    data = dict(FIRST_EXAMPLE[notification_type])
    del data[field]
    with pytest.raises(ValidationError) as exc:
        validate(notification_type, data)
    assert error_locs(exc) == [(notification_type, "data", field)]


@pytest.mark.parametrize("notification_type", sorted(DATA_SCHEMAS))
def test_fields_outside_required_and_oneof_are_optional(notification_type: str) -> None:
    schema = DATA_SCHEMAS[notification_type]
    needed = schema.required | {name for group in schema.one_ofs for name in group[:1]}
    data = {name: value for name, value in FIRST_EXAMPLE[notification_type].items() if name in needed}
    assert validate(notification_type, data).data.model_dump(by_alias=True, exclude_unset=True) == data


@pytest.mark.parametrize(
    ("notification_type", "group"),
    [(t, group) for t in sorted(DATA_SCHEMAS) for group in DATA_SCHEMAS[t].one_ofs],
)
def test_each_oneof_needs_one_of_its_fields(notification_type: str, group: tuple[str, ...]) -> None:
    data = {name: value for name, value in FIRST_EXAMPLE[notification_type].items() if name not in group}
    with pytest.raises(ValidationError) as exc:
        validate(notification_type, data)
    assert error_locs(exc) == [(notification_type, "data")]
    assert f"needs {' or '.join(group)}" in exc.value.errors()[0]["msg"]


@pytest.mark.parametrize(
    ("notification_type", "group"),
    [(t, group) for t in sorted(DATA_SCHEMAS) for group in DATA_SCHEMAS[t].one_ofs],
)
def test_each_oneof_accepts_both_fields_unlike_the_spec(notification_type: str, group: tuple[str, ...]) -> None:
    # The docs send an empty config next to configURL when the config is too large.
    inline, url = group
    data = FIRST_EXAMPLE[notification_type] | {inline: {}, url: SIGNED_URL}
    notification = validate(notification_type, data)
    assert notification.data.model_dump(by_alias=True)[inline] == {}
    assert notification.data.model_dump(by_alias=True)[url] == SIGNED_URL


def test_config_url_has_its_own_alias() -> None:
    # to_camel would give configUrl, which Ampersand never sends.
    data = {k: v for k, v in FIRST_EXAMPLE["installation.created"].items() if k != "config"}
    notification = validate("installation.created", data | {"configURL": SIGNED_URL})
    assert isinstance(notification, ENVELOPES[installation.Created])
    assert notification.data.config_url == SIGNED_URL
    assert notification.data.config is None
    with pytest.raises(ValidationError):
        validate("installation.created", data | {"configUrl": SIGNED_URL})


def test_config_is_kept_as_given() -> None:
    config = {"read": {"objects": {"Account": {"requiredFields": [{"fieldName": "id"}], "schedule": None}}}}
    data = FIRST_EXAMPLE["installation.created"] | {"config": config}
    notification = validate("installation.created", data)
    assert notification.data.config == config


def test_python_names_are_refused() -> None:
    """Routing and the projections read the sender's keys: a snake_case key passed here would leave them
    without the field."""
    by_name = ConnectionFields.model_validate(FIRST_EXAMPLE["connection.created"]).model_dump()
    assert by_name["consumer_ref"] == "user-123"
    with pytest.raises(ValidationError) as exc:
        ConnectionFields.model_validate(by_name)
    renamed = sorted((to_camel(name),) for name in by_name if to_camel(name) != name)
    assert sorted(error_locs(exc)) == renamed
    assert ("connectionId",) in renamed


def test_models_are_frozen() -> None:
    data = ConnectionFields.model_validate(FIRST_EXAMPLE["connection.created"])
    with pytest.raises(ValidationError, match="frozen"):
        data.provider = "hubspot"


def test_unknown_type_is_unrecognized_and_keeps_its_data() -> None:
    data = {"installationId": "inst-1", "nested": {"a": [1, 2]}}
    notification = validate("installation.paused", data)
    assert isinstance(notification, Unrecognized)
    assert notification.notification_type == "installation.paused"
    assert notification.data == data


def test_known_type_with_bad_data_is_not_downgraded_to_unrecognized() -> None:
    with pytest.raises(ValidationError) as exc:
        validate("read.backfill.done", {"objectName": "Account"})
    assert all(loc[0] == "read.backfill.done" for loc in error_locs(exc))


def test_connection_error_takes_error_as_an_array() -> None:
    data = FIRST_EXAMPLE["connection.created"] | {"error": ["Authentication failed"]}
    notification = validate("connection.error", data)
    assert isinstance(notification, ENVELOPES[connection.Failed])
    assert notification.data.error == ["Authentication failed"]
    assert notification.data.errors == []


def test_connection_error_refuses_error_as_a_string() -> None:
    data = FIRST_EXAMPLE["connection.created"] | {"error": "Authentication failed"}
    with pytest.raises(ValidationError) as exc:
        validate("connection.error", data)
    assert error_locs(exc) == [("connection.error", "data", "error")]


def test_write_async_done_partial_failure() -> None:
    data = FIRST_EXAMPLE["write.async.done"] | {
        "success": False,
        "successfulRecordIds": ["rec-1"],
        "errors": ["duplicate record"],
    }
    notification = validate("write.async.done", data)
    assert isinstance(notification, ENVELOPES[installation.AsyncWriteDone])
    assert notification.data.success is False
    assert notification.data.successful_record_ids == ["rec-1"]
    assert notification.data.errors == ["duplicate record"]


def test_write_async_done_lists_default_to_empty() -> None:
    optional = {"successfulRecordIds", "errors"}
    data = {k: v for k, v in FIRST_EXAMPLE["write.async.done"].items() if k not in optional}
    notification = validate("write.async.done", data)
    assert notification.data.successful_record_ids == []
    assert notification.data.errors == []


def test_write_async_done_success_must_be_a_boolean() -> None:
    with pytest.raises(ValidationError) as exc:
        validate("write.async.done", FIRST_EXAMPLE["write.async.done"] | {"success": "false"})
    assert error_locs(exc) == [("write.async.done", "data", "success")]


def test_null_config_counts_as_absent() -> None:
    data = {k: v for k, v in FIRST_EXAMPLE["installation.deleted"].items() if k != "config"}
    notification = validate("installation.deleted", data | {"config": None, "configURL": SIGNED_URL})
    assert notification.data.config is None
    with pytest.raises(ValidationError) as exc:
        validate("installation.deleted", data | {"config": None})
    assert error_locs(exc) == [("installation.deleted", "data")]
