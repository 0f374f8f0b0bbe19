"""JSON bodies through orjson, and the one shape of every error the API returns."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tracker.store.event_log import Appended


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def error_response(status: int, error: str, headers: dict[str, str] | None = None, **detail: Any) -> web.Response:
    return json_response({"error": error, **detail}, status=status, headers=headers)


def appended_doc(appended: Appended) -> dict[str, Any]:
    """Where a stored delivery went, and whether it was there already: the webhook's and a replay's answer."""
    return {
        "duplicate": appended.duplicate,
        "position": appended.position,
        "streamId": appended.stream_id,
        "version": appended.version,
    }
