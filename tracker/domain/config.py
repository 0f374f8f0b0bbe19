"""Configs the tracker fetched from a notification's `configURL` or `lastConfigURL`: events of its own.

Ampersand may send a config by URL only, and the URL is pre-signed and expires. The tracker fetches it
after storing the notification and appends what it got (or why it gave up) to the installation's
stream, so a rebuild never depends on the URL. Their types live under `tracker.`, a prefix no
notification may use (the parser refuses it), so a sender cannot forge a fetched config.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tracker.domain.installation import InstallationEvent, _identity


class ConfigFetched(InstallationEvent):
    """The content at a config URL: data `{installationId, field, url, config}`."""

    TOPIC = "tracker.config.fetched"
    NOTIFICATION_TYPE = "tracker.config.fetched"

    def apply(self, aggregate: Any) -> None:
        # Not InstallationEvent.apply: `config` holds a `lastConfig` too, and a stale URL's content is history.
        aggregate.identity = {**aggregate.identity, **_identity(self.data)}
        content = self.data.get("config")
        current = self.data.get("field") == "config" and self.data.get("url") == aggregate.config_url
        if current and aggregate.config_missing and isinstance(content, dict) and content:
            aggregate.config = content
            aggregate.config_missing = False


class ConfigUnavailable(InstallationEvent):
    """The tracker gave up fetching a config URL: data `{installationId, field, url, error}`."""

    TOPIC = "tracker.config.unavailable"
    NOTIFICATION_TYPE = "tracker.config.unavailable"


def without_query(url: str) -> str:
    """Scheme, host and path only: a pre-signed URL's query (and any user info) carries credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


_NOTIFICATION_URL_FIELDS = ("configURL", "lastConfigURL")
_FETCH_TYPES = frozenset({ConfigFetched.NOTIFICATION_TYPE, ConfigUnavailable.NOTIFICATION_TYPE})


def strip_config_urls(event_type: str, data: Any) -> Any:
    """The event's data to serve: each config URL it names cut to `without_query`. The log keeps them whole."""
    fields = ("url",) if event_type in _FETCH_TYPES else _NOTIFICATION_URL_FIELDS
    if not isinstance(data, dict):
        return data
    urls = {name: without_query(url) for name in fields if isinstance(url := data.get(name), str)}
    return {**data, **urls} if urls else data


_URL = re.compile(
    rb"(https?:(?:\\?/){2})"  # the scheme and its slashes, maybe escaped as JSON may escape them
    rb"(?:[^\s\"<>/\\?#@]*@)?"  # user info: dropped
    rb"((?:[^\s\"<>?#\\]|\\(?![uU]003[fF])[^\s\"])*)"  # host and path (escaped slashes too): kept
    rb"(?:(?:\?|\\[uU]003[fF])(?:[^\s\"<>#\\]|\\[^\s\"])*)?",  # the query, ? maybe escaped as \u003f, up to
    # what no URL holds or an escaped quote: dropped
    re.IGNORECASE,
)


def strip_url_queries(text: bytes) -> bytes:
    """`text` to serve, every http(s) URL in it without its query and user info, found in the bytes, so a body
    that is not JSON, or not even UTF-8, is covered too."""
    return _URL.sub(rb"\1\2", text)
