"""ampersand-tracker: Ampersand notifications into a PostgreSQL event log, projected state over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracker.facade import Tracker
    from tracker.settings import Settings

__all__ = ["Settings", "Tracker"]


def __getattr__(name: str) -> object:
    """Import the facade on first use: `projections/` builds on `tracker.domain`, so importing any of it runs
    this file first, and an eager import of the facade here would import `projections` half-initialised."""
    if name == "Tracker":
        from tracker.facade import Tracker  # noqa: PLC0415

        return Tracker
    if name == "Settings":
        from tracker.settings import Settings  # noqa: PLC0415

        return Settings
    raise AttributeError(name)
