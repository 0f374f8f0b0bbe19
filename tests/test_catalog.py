"""Each event type is declared once, by its domain event class; the wire models, the routing and the read
models' types derive from those classes."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Literal

import pytest

import tracker.domain
from projections import READ_MODELS
from projections.issues import REPORTED_BY
from tracker.domain import EVENT_CLASSES, KNOWN_TYPES, NOTIFICATIONS, OWN_EVENTS, route
from tracker.domain.base import OWN_PREFIX, DuplicateTypeError
from tracker.domain.installation import InstallationEvent
from tracker.models import ENVELOPES, notification_tag

DOMAIN = Path(tracker.domain.__file__).parent


def test_the_catalog_splits_ampersand_s_types_from_the_tracker_s_own() -> None:
    assert len(NOTIFICATIONS) == 15
    assert frozenset(NOTIFICATIONS) == KNOWN_TYPES
    assert all(kind.startswith(OWN_PREFIX) for kind in OWN_EVENTS)
    assert dict(EVENT_CLASSES) == {**NOTIFICATIONS, **OWN_EVENTS}
    assert all(cls.TOPIC and kind == cls.NOTIFICATION_TYPE for kind, cls in EVENT_CLASSES.items())


def test_a_second_class_declaring_a_known_type_is_refused() -> None:
    with pytest.raises(DuplicateTypeError, match=r"'installation\.deleted' is declared twice"):

        class Removed(InstallationEvent):  # a second spelling of installation.deleted
            NOTIFICATION_TYPE = "installation.deleted"

    assert EVENT_CLASSES["installation.deleted"].__qualname__ == "Deleted"


def test_every_notification_type_has_its_wire_model_and_goes_to_its_aggregate_s_stream() -> None:
    assert set(ENVELOPES) == set(NOTIFICATIONS.values())
    for kind, cls in NOTIFICATIONS.items():
        envelope = ENVELOPES[cls]
        assert envelope.model_fields["notification_type"].annotation == Literal[kind]
        assert notification_tag({"notificationType": kind}) == kind
        aggregate = cls.AGGREGATE
        assert route(kind, {aggregate.ID_FIELD: "x-1"}) == (f"{aggregate.STREAM_PREFIX}:x-1", cls)
    assert notification_tag({"notificationType": "tracker.read_schedule.resumed"}) == "unrecognized"


def test_each_read_model_folds_declared_types_of_its_own_streams_and_reports_declared_types() -> None:
    for model in READ_MODELS:
        assert model.types, model.name
        for kind in model.types:
            assert model.stream_prefix == EVENT_CLASSES[kind].AGGREGATE.STREAM_PREFIX, (model.name, kind)
    assert frozenset().union(*REPORTED_BY.values()) <= EVENT_CLASSES.keys()


def test_the_domain_imports_nothing_of_ours_above_it() -> None:
    for module in DOMAIN.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                ours = name.split(".")[0] in {"tracker", "projections", "bench"}
                assert not ours or name.startswith("tracker.domain"), f"{module.name} imports {name}"
                assert name.split(".")[0] not in {"pydantic", "asyncpg", "aiohttp"}, f"{module.name} imports {name}"
