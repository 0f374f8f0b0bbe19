"""What the store can tell its callers went wrong, independent of the driver."""

from __future__ import annotations

from types import TracebackType

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
    # What asyncpg raises, now and then, on a connection whose server process ended mid-operation (its
    # postmaster killed, the session terminated): "cannot switch to state N; another operation is in progress".
    asyncpg.InternalClientError,
)


class StoreUnavailableError(Exception):
    """The database could not be reached; nothing was stored."""


class UnavailableGuard:
    """Turns the driver's many ways of saying "cannot reach the database" into StoreUnavailableError."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, UNAVAILABLE_ERRORS):
            msg = f"{self._what} unavailable: {type(exc).__name__}"
            raise StoreUnavailableError(msg) from exc


def refused_by_database(exc: asyncpg.PostgresError) -> bool:
    """Data the database will never take (classes 22 data, 23 integrity, 54 limits), not a passing state."""
    return (exc.sqlstate or "")[:2] in {"22", "23", "54"}


class EventRefusedError(Exception):
    """The database refused this one event (its neighbours in the batch were stored)."""


class OverloadedError(Exception):
    """Too many notifications are waiting for a commit; the sender should retry later."""
