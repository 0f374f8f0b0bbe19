"""What the store can tell its callers went wrong, independent of the driver."""

from __future__ import annotations

import asyncpg

# Errors that mean "the database cannot be reached right now": the sender should retry later.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)


class StoreUnavailableError(Exception):
    """The database could not be reached; nothing was stored."""


class OverloadedError(Exception):
    """Too many notifications are waiting for a commit; the sender should retry later."""
