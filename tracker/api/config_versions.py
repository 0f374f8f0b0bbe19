"""An installation's config versions, folded from its stream on request, and the diff between two of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from projections.config_versions import CARRIES_CONFIG, Change, ConfigVersion, Versions, diff, record_update
from tracker.api.keys import TRACKER
from tracker.api.responses import error_response, json_response
from tracker.api.scopes import hidden
from tracker.domain.config import ConfigFetched
from tracker.store import views
from tracker.store.event_log import EventLog

routes = web.RouteTableDef()
PAGE_SIZE = 1000
"""Events read from the stream per query: a long history is folded without holding it all at once."""

_VERSION = TypeAdapter(ConfigVersion)
_CHANGES = TypeAdapter(list[Change])


@dataclass(frozen=True, slots=True)
class _History:
    versions: Versions
    contents: dict[str, dict[str, Any]]
    """Each version's config, by sha256."""


async def _history(event_log: EventLog, installation_id: str) -> _History | None:
    """Fold the stream with `record_update`; None when the stream has no events at all.

    Every content seen is recorded, a late `installation.created` too (the read model keeps the config a
    later update set, but a history of distinct contents has a place for it either way).
    """
    versions: Versions = ()
    contents: dict[str, dict[str, Any]] = {}
    held: dict[str, Any] | None = None
    after, seen = 0, False
    while True:
        rows = await event_log.stream(f"installation:{installation_id}", after, PAGE_SIZE)
        seen = seen or bool(rows)
        for row in rows:
            data = row["data"]
            if row["type"] == ConfigFetched.NOTIFICATION_TYPE and isinstance(data, dict):
                data = {data.get("field"): data.get("config")}  # as if the notification had carried it
            elif row["type"] not in CARRIES_CONFIG or not isinstance(data, dict):
                continue
            before = len(versions)
            versions, number = record_update(versions, held, data, row["received_at"])
            for added in versions[before:]:  # record_update adds the lastConfig as missed, else the config
                contents[added.sha256] = data["lastConfig" if added.missed_update else "config"]
            if number is not None:
                held = data["config"]
        if len(rows) < PAGE_SIZE:
            return _History(versions, contents) if seen else None
        after = rows[-1]["version"]


async def _visible_history(request: web.Request, key: str) -> _History | None:
    """The history, or None as for an unknown installation when the token may not see it."""
    if await hidden(request, views.INSTALLATIONS, key):
        return None
    return await _history(request.app[TRACKER].event_log, key)


@routes.get("/v1/installations/{key}/config-versions/diff")
async def config_diff(request: web.Request) -> web.Response:
    """`?from=N&to=M`: `to` defaults to the newest version, `from` to the one before `to`."""
    key = request.match_info["key"]
    try:
        chosen = {name: int(request.query[name]) for name in ("from", "to") if name in request.query}
    except ValueError:
        return error_response(400, "from and to must be integer version numbers")
    history = await _visible_history(request, key)
    if history is None:
        return error_response(404, f"no installation {key!r}")
    newest = len(history.versions)
    if newest == 0:
        return error_response(404, f"installation {key!r} has no config versions")
    to = chosen.get("to", newest)
    start = chosen.get("from", to - 1)
    if "from" not in chosen and to == 1:
        return error_response(400, "version 1 is the first config version: nothing before it to diff", newest=newest)
    for name, number in (("from", start), ("to", to)):
        if not 1 <= number <= newest:
            return error_response(400, f"{name}={number} is not a config version of {key!r}", newest=newest)
    old, new = (history.contents[history.versions[number - 1].sha256] for number in (start, to))
    changes = _CHANGES.dump_python(diff(old, new), mode="json", by_alias=True)
    return json_response({"from": start, "to": to, "changes": changes})


@routes.get("/v1/installations/{key}/config-versions")
async def config_versions(request: web.Request) -> web.Response:
    """Every distinct config the installation has had, oldest first, with its content."""
    key = request.match_info["key"]
    history = await _visible_history(request, key)
    if history is None:
        return error_response(404, f"no installation {key!r}")
    items = [
        _VERSION.dump_python(version, mode="json", by_alias=True) | {"config": history.contents[version.sha256]}
        for version in history.versions
    ]
    return json_response({"items": items})
