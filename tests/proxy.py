"""A TCP proxy in front of the test database, so a test can make PostgreSQL unreachable and back."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from urllib.parse import parse_qs, urlsplit, urlunsplit


class PostgresProxy:
    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        socket_dir = parse_qs(parts.query).get("host", [None])[0]
        self._port = parts.port or 5432
        self._unix_path = f"{socket_dir}/.s.PGSQL.{self._port}" if socket_dir else None
        self._host = parts.hostname or "127.0.0.1"
        self._parts = parts
        self._server: asyncio.Server | None = None
        self._listen_port = 0
        self._links: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        user = self._parts.username or "postgres"
        return urlunsplit(self._parts._replace(netloc=f"{user}@127.0.0.1:{self._listen_port}", query=""))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self._listen_port)
        self._listen_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a database that went away would."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def __aenter__(self) -> PostgresProxy:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _link(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._unix_path:
            reader, writer = await asyncio.open_unix_connection(self._unix_path)
        else:
            reader, writer = await asyncio.open_connection(self._host, self._port)
        self._links.update((client_writer, writer))
        await asyncio.gather(_pipe(client_reader, writer), _pipe(reader, client_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
