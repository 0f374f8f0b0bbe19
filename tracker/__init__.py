"""ampersand-tracker: Ampersand notifications into a PostgreSQL event log, projected state over HTTP."""

from tracker.facade import Tracker
from tracker.settings import Settings

__all__ = ["Settings", "Tracker"]
