"""Configs the tracker fetched from a notification's `configURL` or `lastConfigURL`: events of its own.

Ampersand may send a config by URL only, and the URL is pre-signed and expires. The tracker fetches it
after storing the notification and appends what it got (or why it gave up) to the installation's
stream, so a rebuild never depends on the URL. Their types live under `tracker.`, a prefix no
notification may use (the parser refuses it), so a sender cannot forge a fetched config.
"""

from __future__ import annotations

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
