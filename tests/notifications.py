"""Notification payloads for tests, with random ids (no two tests share an entity), and a Svix signer."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def installation_fields(
    installation_id: str, connection_id: str = "conn-1", project_id: str = "proj-1"
) -> dict[str, str]:
    return {
        "projectId": project_id,
        "provider": "salesforce",
        "integrationId": "integ-1",
        "integrationName": "Salesforce sync",
        "installationId": installation_id,
        "connectionId": connection_id,
        "groupRef": "group-1",
        "groupName": "Acme",
        "consumerRef": "consumer-1",
        "consumerName": "Ada",
    }


def connection_fields(connection_id: str, project_id: str = "proj-1") -> dict[str, str]:
    return {
        "projectId": project_id,
        "connectionId": connection_id,
        "provider": "salesforce",
        "groupRef": "group-1",
        "consumerRef": "consumer-1",
        "consumerName": "Ada",
    }


def notification(notification_type: str, **data: Any) -> dict[str, Any]:
    return {"notificationType": notification_type, "data": data}


def installation_event(notification_type: str, installation_id: str, **extra: Any) -> dict[str, Any]:
    return notification(notification_type, **{**installation_fields(installation_id), **extra})


def config(objects: tuple[str, ...] = ("account",), destination: str = "main-webhook") -> dict[str, Any]:
    return {
        "provider": "salesforce",
        "read": {
            "objects": {
                name: {"objectName": name, "destination": destination, "schedule": "*/15 * * * *"} for name in objects
            }
        },
    }


class Signer:
    """Signs like Svix does: HMAC-SHA256 over `id.timestamp.body`, headers `svix-*`."""

    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def headers(self, body: bytes, msg_id: str | None = None, timestamp: float | None = None) -> dict[str, str]:
        msg_id = msg_id or new_id("msg")
        when = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, tz=UTC)
        return {
            "svix-id": msg_id,
            "svix-timestamp": str(int(when.timestamp())),
            "svix-signature": self._webhook.sign(msg_id, when, body.decode()),
            "content-type": "application/json",
        }

    def signed(self, payload: dict[str, Any], msg_id: str | None = None) -> tuple[bytes, dict[str, str]]:
        body = orjson.dumps(payload)
        return body, self.headers(body, msg_id)
