"""The `tracker` command in a real process: serve (embedded PostgreSQL and external), migrate, import,
rebuild, status, and the refusal to listen publicly without a secret."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from pathlib import Path

import aiohttp
import orjson

from projections import READ_MODELS

from .notifications import config, connection_fields, installation_event, new_id
from .waiting import eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(*args: str, env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tracker", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    printed: list[bytes] = []

    async def read_to_the_end() -> int:
        assert process.stdout is not None
        while chunk := await process.stdout.read(1 << 16):
            printed.append(chunk)
        return await process.wait()

    try:
        code = await asyncio.wait_for(read_to_the_end(), timeout)
    except TimeoutError:
        process.kill()  # leave no process behind a failed test, and say how far it got
        await process.wait()
        output = b"".join(printed).decode(errors="replace")
        raise AssertionError(f"`tracker {' '.join(args)}` still ran after {timeout} s; it printed:\n{output}") from None
    return code, b"".join(printed).decode()


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    return {**env, **extra}


async def serve_and_post(env: dict[str, str]) -> None:
    """Start `tracker serve`, post one unsigned notification from loopback, read it back, stop with SIGTERM."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tracker", "serve", "--port", str(port), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    installation_id = new_id("inst")
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):  # up to 60 s: the embedded server's first start runs initdb
                try:
                    async with session.get(f"{base}/v1/status") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            payload = installation_event("installation.created", installation_id, config=config())
            async with session.post(f"{base}/webhooks/ampersand", data=orjson.dumps(payload)) as response:
                assert response.status == 200
                assert (await response.json())["duplicate"] is False
            for _ in range(100):
                async with session.get(f"{base}/v1/installations/{installation_id}") as response:
                    if response.status == 200:
                        assert (await response.json())["configVersion"] == 1
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the installation never became visible")
    finally:
        process.terminate()
        try:
            output, _ = await asyncio.wait_for(process.communicate(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    assert process.returncode == 0, output.decode()
    assert "signatures are NOT checked" in output.decode()


async def test_serve_on_the_embedded_postgres_by_default(tmp_path: Path) -> None:
    await serve_and_post(environment(TRACKER_DATA_DIR=str(tmp_path / "data")))
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").exists()


async def test_serve_migrate_import_rebuild_status_on_a_database_url(database_url: str, tmp_path: Path) -> None:
    env = environment(TRACKER_DATABASE_URL=database_url)
    code, output = await run("migrate", env=env)
    assert code == 0, output
    await serve_and_post(env)
    installation_id = new_id("inst")
    lines = [installation_event("installation.created", installation_id, config=config()),
             installation_event("read.backfill.done", installation_id, objectName="account")]  # fmt: skip
    path = tmp_path / "in.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")

    code, output = await run("import", str(path), env={**env, "TRACKER_LOG_LEVEL": "debug"})
    assert code == 0, output
    assert "2 lines: 2 appended, 0 duplicates, 0 quarantined" in output

    code, output = await run("rebuild", "installations", env=env)
    assert code == 0, output
    assert "installations: replaying, " in output  # not a terminal: progress as log lines, no bar
    assert re.search(r"installations: \d+ events replayed, switched over", output)

    code, output = await run("status", "--json", env=env)  # the table is for people: JSON for a test
    assert code == 0, output
    status = orjson.loads(output[output.index("{") :])
    assert status["events"] >= 3
    assert {p["name"] for p in status["projections"]} == {model.name for model in READ_MODELS}


async def test_serve_refuses_a_public_address_without_a_secret(database_url: str) -> None:
    code, output = await run("serve", "--host", "0.0.0.0", "--port", str(free_port()),
                             env=environment(TRACKER_DATABASE_URL=database_url), timeout=60)  # fmt: skip
    assert code != 0
    assert "refusing to listen on 0.0.0.0 without TRACKER_WEBHOOK_SECRET" in output


async def test_serve_refuses_a_malformed_variable_in_one_line_that_names_it_and_not_its_value() -> None:
    secret = f"garbage-{new_id('secret')}"
    code, output = await run("serve", "--port", str(free_port()), env=environment(TRACKER_WEBHOOK_SECRET=secret),
                             timeout=60)  # fmt: skip
    said = "TRACKER_WEBHOOK_SECRET: entry 1 is not whsec_ followed by a base64 key (the secret as Svix shows it)"
    assert (code, output) == (2, f"tracker: {said}\n")  # one line, no traceback, no value


def children_of(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their command lines (Linux's /proc: no psutil in the tests)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = command
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_serve_with_more_processes_answers_on_one_port_and_stops_them_all(database_url: str) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tracker", "serve", "--port", str(port), "--processes", "3",
        env=environment(TRACKER_DATABASE_URL=database_url),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    async def two_more_http_processes() -> bool:
        return sum("--reuse-port" in command for command in children_of(process.pid).values()) == 2

    try:
        await eventually(two_more_http_processes, timeout=30)  # each starts once its parent listens
        children = list(children_of(process.pid))  # the HTTP processes and the projection process
        connection_ids = [new_id("conn") for _ in range(20)]
        # A connection each, so that the kernel spreads them over the processes listening on the port.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            for connection_id in connection_ids:
                payload = {"notificationType": "connection.created", "data": connection_fields(connection_id)}
                async with session.post(f"{base}/webhooks/ampersand", data=orjson.dumps(payload)) as response:
                    assert response.status == 200
            async with session.get(f"{base}/v1/status") as response:
                assert (await response.json())["events"] >= len(connection_ids)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 60)
    assert process.returncode == 0
    assert [pid for pid in children if alive(pid)] == []
