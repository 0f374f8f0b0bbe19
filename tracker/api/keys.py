"""Typed keys for what the API keeps on its application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from tracker.facade import Tracker

TRACKER: web.AppKey[Tracker] = web.AppKey("tracker")
