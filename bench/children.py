"""Child processes that are always reaped: servers, the load generator and timed replays.

Each child starts in its own session, so killing its process group also ends anything it spawned;
on Linux it is also killed if the benchmark itself dies uncleanly. Output goes to a file, not a
pipe, so a chatty server can never block on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
PYTHON = sys.executable
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
"""Loaded before any fork: the child may only make the call, not load a library."""


class ChildError(RuntimeError):
    """A child exited badly or did not get ready in time; the message holds the tail of its output."""


def free_port() -> int:
    """A port the kernel had free a moment ago (bind to 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def port_in(ports: range, taken: Collection[int] = ()) -> int:
    """The first port of `ports` that is free now and not in `taken`: for work that keeps to a range agreed with
    whoever else uses this machine."""
    for port in ports:
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                continue
        return port
    msg = f"no free port in {ports.start}-{ports.stop - 1}"
    raise OSError(msg)


def _die_with_parent() -> None:
    """Run in the child before exec: a SIGKILLed benchmark must not leave a server listening."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment minus every TRACKER_* setting (no stray Kinesis stream or token), plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRACKER_")}
    env.update(extra)
    return env


@dataclass(slots=True)
class Child:
    name: str
    process: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, what: str) -> ChildError:
        msg = f"{self.name} {what}; last output:\n{self.tail()}"
        return ChildError(msg)


@contextlib.asynccontextmanager
async def spawn(name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> AsyncIterator[Child]:
    """Run `args` for the duration of the block; on leaving, SIGTERM the group, then SIGKILL after 5 s."""
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            preexec_fn=_die_with_parent,  # one libc call, no locks taken: safe after fork
        )
    child = Child(name, process, log)
    try:
        yield child
    finally:
        await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Signal the child's group only while the child lives: once reaped, its id may name another."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 5)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


async def wait_listening(child: Child, port: int, timeout: float = 60) -> None:
    """Return once `port` accepts connections; raise if the child dies or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.returncode is not None:
            raise child.failure(f"exited with {child.process.returncode} before listening")
        try:
            _, writer = await asyncio.open_connection(LOOPBACK, port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise child.failure(f"did not listen on port {port} within {timeout:.0f} s")


async def run_to_end(child: Child, timeout: float) -> None:
    """Wait for the child to exit 0 within `timeout`."""
    try:
        await asyncio.wait_for(child.process.wait(), timeout)
    except TimeoutError:
        raise child.failure(f"did not finish within {timeout:.0f} s") from None
    if child.process.returncode != 0:
        raise child.failure(f"exited with {child.process.returncode}")
