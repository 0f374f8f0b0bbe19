"""Realistic notifications, in the webhook shape, from a seeded mix of Ampersand's types.

The mix leans on what a busy tenant sends most (writes and triggered reads), with an installation's
~1 KB config on the lifecycle types, so bodies are the sizes the tracker sees in production.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

OBJECTS = ("account", "contact", "opportunity", "lead", "task")

MIX: tuple[tuple[str, int], ...] = (
    ("write.async.done", 30),
    ("read.triggered.done", 18),
    ("read.backfill.done", 10),
    ("installation.created", 8),
    ("installation.updated", 6),
    ("read.triggered.error", 5),
    ("connection.refreshed", 5),
    ("connection.error", 5),
    ("read.schedule.paused", 4),
    ("subscribe.create.error", 3),
    ("connection.created", 3),
    ("installation.deleted", 2),
    ("destination.webhook.disabled", 1),
)
"""(type, weight): how often each type occurs after an installation's first notification."""

_TYPES = tuple(kind for kind, _ in MIX)
_WEIGHTS = tuple(weight for _, weight in MIX)
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def config(installation: int, revision: int = 0) -> dict[str, Any]:
    """An installation config of about 1 KB: five read objects with fields, a write and a subscribe."""
    return {
        "provider": "salesforce",
        "revision": revision,
        "read": {
            "objects": {
                name: {
                    "objectName": name,
                    "destination": f"dest-{installation % 50}",
                    "schedule": "*/15 * * * *",
                    "selectedFields": {"id": True, "name": True, "ownerid": True, "createddate": True},
                }
                for name in OBJECTS
            }
        },
        "write": {"objects": {"contact": {"objectName": "contact", "inheritMapping": True}}},
        "subscribe": {"objects": {"account": {"objectName": "account", "destination": "main-webhook"}}},
    }


def installation_id(installation: int) -> str:
    return f"inst-{installation:06d}"


def _installation_fields(installation: int) -> dict[str, Any]:
    return {
        "projectId": f"proj-{installation % 7}",
        "provider": "salesforce",
        "integrationId": f"integ-{installation % 3}",
        "integrationName": "Salesforce sync",
        "installationId": installation_id(installation),
        "connectionId": f"conn-{installation:06d}",
        "groupRef": f"group-{installation:06d}",
        "groupName": f"Customer {installation}",
        "consumerRef": f"user-{installation % 997}",
        "consumerName": "Ada Lovelace",
    }


def _connection_fields(installation: int) -> dict[str, Any]:
    fields = _installation_fields(installation)
    keys = ("projectId", "connectionId", "provider", "groupRef", "consumerRef", "consumerName")
    return {key: fields[key] for key in keys}


def notification(kind: str, installation: int, rng: random.Random, sequence: int) -> dict[str, Any]:
    """One notification of type `kind` about `installation`; `sequence` orders its read windows."""
    data: dict[str, Any]
    if kind.startswith("connection."):
        data = _connection_fields(installation)
        if kind == "connection.error":
            data["errors"] = ["token refresh failed: invalid_grant", "401 Unauthorized"]
    elif kind == "destination.webhook.disabled":
        data = {
            "projectId": f"proj-{installation % 7}",
            "destinationId": f"dest-{installation % 50}",
            "destinationName": "main-webhook",
            "url": "https://hooks.example.com/ampersand",
        }
    else:
        data = _installation_fields(installation)
        data.update(_installation_extra(kind, installation, rng, sequence))
    return {"notificationType": kind, "data": data}


def _installation_extra(kind: str, installation: int, rng: random.Random, sequence: int) -> dict[str, Any]:
    until = _EPOCH + timedelta(minutes=15 * sequence)
    window = {"fromTimestamp": (until - timedelta(minutes=15)).isoformat(), "untilTimestamp": until.isoformat()}
    match kind:
        case "installation.created" | "installation.deleted":
            return {"config": config(installation)}
        case "installation.updated":
            return {"config": config(installation, sequence), "lastConfig": config(installation, sequence - 1)}
        case "read.schedule.paused":
            return {"config": config(installation), "error": "Authentication failed"}
        case "read.backfill.done":
            return {"objectName": rng.choice(OBJECTS)}
        case "read.triggered.done":
            return {"objectName": rng.choice(OBJECTS), **window}
        case "read.triggered.error":
            return {"objectName": rng.choice(OBJECTS), **window, "error": "rate limited by provider"}
        case "write.async.done":
            success = rng.random() < 0.9
            return {
                "objectName": rng.choice(OBJECTS),
                "success": success,
                "successfulRecordIds": [f"rec-{rng.randrange(10**9)}" for _ in range(rng.randrange(1, 11))],
                "errors": [] if success else ["field validation failed: Email", "duplicate record"],
            }
        case "subscribe.create.error":
            return {"error": "Failed to create subscription: insufficient permissions"}
    msg = f"no payload builder for {kind}"
    raise ValueError(msg)


def stream(count: int, installations: int, seed: int) -> Iterator[dict[str, Any]]:
    """Yield `count` notifications over `installations` installations, each opened by `installation.created`.

    Rounds visit every installation in a fresh random order, so streams interleave as they would live.
    """
    rng = random.Random(seed)
    emitted = 0
    sequence = 0
    order = list(range(installations))
    while emitted < count:
        rng.shuffle(order)
        for installation in order:
            if emitted == count:
                return
            kind = "installation.created" if sequence == 0 else rng.choices(_TYPES, _WEIGHTS)[0]
            yield notification(kind, installation, rng, sequence)
            emitted += 1
        sequence += 1
