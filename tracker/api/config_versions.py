"""An installation's config versions, folded from its stream on request, and the diff between two of them."""

from __future__ import annotations

from aiohttp import web
from pydantic import TypeAdapter

from projections.config_versions import Change, ConfigVersion, diff
from tracker.api.entities import INSTALLATION_ID
from tracker.api.keys import services_of
from tracker.api.responses import error_response, json_response
from tracker.api.routing import Access, Answer, RouteTable, query
from tracker.api.schemas import ConfigDiff, ConfigVersions
from tracker.api.scopes import hidden
from tracker.services.config_history import ConfigHistory
from tracker.store import views

routes = RouteTable()
_VERSION = TypeAdapter(ConfigVersion)
_CHANGES = TypeAdapter(list[Change])


async def _visible_history(request: web.Request, key: str) -> ConfigHistory | None:
    """The history, or None as for an unknown installation when the token may not see it."""
    if await hidden(request, views.INSTALLATIONS, key):
        return None
    return await services_of(request).queries.config_history(key)


@routes.get(
    "/v1/installations/{installationId}/config-versions/diff", Access.SCOPED,
    "A structural diff between two config versions (by default the last two)", Answer("the changes", ConfigDiff),
    errors={404: "no such installation, or it has no config versions"},
    parameters=(INSTALLATION_ID,
                *(query(end, {"type": "integer", "minimum": 1}, "a config version number") for end in ("from", "to"))),
)  # fmt: skip
async def config_diff(request: web.Request) -> web.Response:
    """`?from=N&to=M`: `to` defaults to the newest version, `from` to the one before `to`."""
    key = request.match_info["installationId"]
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


@routes.get(
    "/v1/installations/{installationId}/config-versions", Access.SCOPED,
    "Each distinct config the installation has had, oldest first", Answer("the versions", ConfigVersions),
    errors={404: "no such installation"}, parameters=(INSTALLATION_ID,),
)  # fmt: skip
async def config_versions(request: web.Request) -> web.Response:
    """Every distinct config the installation has had, oldest first, with its content."""
    key = request.match_info["installationId"]
    history = await _visible_history(request, key)
    if history is None:
        return error_response(404, f"no installation {key!r}")
    items = [
        _VERSION.dump_python(version, mode="json", by_alias=True) | {"config": history.contents[version.sha256]}
        for version in history.versions
    ]
    return json_response({"items": items})
