"""The dashboard at `GET /`: a page and its script, served without a token.

The data is not in the page: the script asks for the API token once (when the API wants one), keeps
it in the browser's sessionStorage and reads the /v1 JSON routes with it, so the dashboard shows
exactly what the API serves and needs no second way in. It refreshes from `GET /v1/changes`, which
it reads with fetch() rather than EventSource, because EventSource cannot send the token in a header
and a token in the URL would end up in access logs.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from aiohttp import web

from tracker.api.keys import services_of
from tracker.api.responses import error_response
from tracker.api.routing import Access, Answer, RouteTable, path

routes = RouteTable()
STATIC = Path(__file__).resolve().parent / "static"
ASSETS = frozenset(("dashboard.js", "dashboard.css"))
"""The files under `static/` that are served: nothing else there is reachable."""

# Script and styles only from this server, no inline code: a token in sessionStorage is only as safe
# as the page is from injected script (the script also builds the DOM from text nodes, never HTML).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self';"
        " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

PAGE = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ampersand tracker</title>
<link rel="stylesheet" href="static/dashboard.css">
<script src="static/dashboard.js" defer></script>
</head>
<body data-token="$token">
<header>
  <a class="brand" href="#/">Ampersand tracker</a>
  <nav aria-label="Pages"><a href="#/">Overview</a> <a href="#/alerts">Alerts</a></nav>
  <span id="live" class="live off" title="live updates from /v1/changes">offline</span>
  <button id="forget-token" type="button" hidden>Forget token</button>
</header>
<form id="token-form" hidden>
  <h1>API token</h1>
  <p>This tracker wants its API token (TRACKER_API_TOKEN). It is kept in this browser tab only.</p>
  <p id="token-error" class="error" hidden></p>
  <input id="token" type="password" autocomplete="off" aria-label="API token" required>
  <button type="submit">Open the dashboard</button>
</form>
<main id="main"><p class="muted">Loading…</p></main>
<noscript>The dashboard needs JavaScript; the same data is at <a href="v1/health">v1/health</a>.</noscript>
</body>
</html>
""")


@routes.get(
    "/", Access.PUBLIC, "The dashboard (no token: the page asks for it, and holds no data)",
    Answer("the page", media=("text/html",)), database=False,
)  # fmt: skip
async def page(request: web.Request) -> web.Response:
    settings = services_of(request).settings
    token = "required" if settings.api_token or settings.scoped_tokens else "none"
    return web.Response(text=PAGE.substitute(token=token), content_type="text/html", headers=SECURITY_HEADERS)


@routes.get(
    "/static/{name}", Access.PUBLIC, "The dashboard's script and styles",
    # Which JavaScript type aiohttp names depends on the Python.
    Answer("the file", media=("text/javascript", "application/javascript", "text/css")),
    errors={404: "no such file"}, parameters=(path("name", "a file", {"type": "string", "enum": sorted(ASSETS)}),),
    database=False,
)  # fmt: skip
async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        return error_response(404, f"no static file {name!r}")
    return web.FileResponse(STATIC / name, headers=SECURITY_HEADERS)
