"""What the scenarios share to measure the tracker: a tracker (embedded here, or `tracker serve` as a child),
any server on a loopback port (a baseline receiver, moto), the load generator's command line, a run of a
generator with the CPU the server and PostgreSQL spent meanwhile, and the repetitions that interleave runs.

Servers, generators and timed replays each run as a process of their own (`bench.children`), on a
database of their own where they write (`bench.database`), so no figure shares a CPU budget with the
code that measures it.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from bench import profile
from bench.children import LOOPBACK, PYTHON, Child, child_env, free_port, run_to_end, spawn, wait_listening
from bench.cpu import CpuMeter, find_postmaster
from tracker import Tracker
from tracker.settings import Settings

WEBHOOK = "/webhooks/ampersand"

Variant = TypeVar("Variant")
Measured = TypeVar("Measured")


class CheckError(AssertionError):
    """A run whose answers, stored rows or views are wrong: its figures would mean nothing."""


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def embedded_tracker(url: str) -> Tracker:
    """A tracker on `url` that folds nothing by itself; from defaults, whatever TRACKER_* says here."""
    # A secret, though no webhook is served: without one the tracker warns that signatures go unchecked.
    return Tracker(Settings(database_url=url, webhook_secrets=(new_secret(),)), follow_projections=False)


async def migrate(url: str) -> None:
    """Apply the tracker's migrations to the database at `url`, so that no timed start pays for them."""
    async with embedded_tracker(url):
        pass  # starting applies the migrations


def command(module: str, *args: str, **options: object) -> list[str]:
    """`python -m MODULE ARGS --option value ...`; an option's underscores are dashes on the command line."""
    flags = [part for name, value in options.items() for part in (f"--{name.replace('_', '-')}", str(value))]
    return [PYTHON, "-m", module, *args, *flags]


def serve_command(port: int, *options: str) -> list[str]:
    """`tracker serve` on loopback `port`, with `options` (`--projections none`, say)."""
    return [*command("tracker", "serve", host=LOOPBACK, port=port), *options]


def tracker_env(url: str, secret: str, **settings: str) -> dict[str, str]:
    """A child tracker's environment: the database at `url`, `secret`, `settings` (TRACKER_* variables), and
    no other TRACKER_* setting of the shell that runs the bench."""
    return child_env({"TRACKER_DATABASE_URL": url, "TRACKER_WEBHOOK_SECRET": secret, **settings})


class OnLoopback:
    """The URLs of a server on a loopback port."""

    __slots__ = ()
    port: int

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def webhook(self) -> str:
        return self.base + WEBHOOK


@dataclass(frozen=True, slots=True)
class Listening(OnLoopback):
    """A child serving HTTP on a loopback port."""

    child: Child
    port: int

    def check_alive(self) -> None:
        """Raise if the child has exited: what answered meanwhile was not the server measured."""
        if self.child.process.returncode is not None:
            raise self.child.failure("died during the run")


@contextlib.asynccontextmanager
async def listening(
    name: str, argv: Callable[[int], list[str]], env: Mapping[str, str], work_dir: Path, *, port: int | None = None
) -> AsyncIterator[Listening]:
    """Run `argv(port)` (a free port unless given) for the block, which starts once the port accepts
    connections."""
    port = free_port() if port is None else port
    async with spawn(name, argv(port), env, work_dir) as child:
        await wait_listening(child, port)
        yield Listening(child, port)


@contextlib.asynccontextmanager
async def tracker_serve(
    name: str, url: str, work_dir: Path, *options: str, secret: str | None = None, **settings: str
) -> AsyncIterator[Listening]:
    """`tracker serve OPTIONS` on the database at `url` for the block; a fresh secret unless given."""
    env = tracker_env(url, secret or new_secret(), **settings)
    async with listening(name, lambda port: serve_command(port, *options), env, work_dir) as server:
        yield server


@dataclass(frozen=True, slots=True)
class Load:
    """The signed webhook load `bench.loadgen` sends: closed loop, `workers` requests in flight."""

    requests: int
    """Timed requests, after the warm-up."""
    warmup: int
    time_limit: float
    """Seconds after which the generator starts no more requests."""
    workers: int = 32
    installations: int = 2_000

    def command(self, url: str, secret: str, out: Path) -> list[str]:
        """The generator posting signed notifications to `url`; it writes its LoadResult to `out`."""
        return command(
            "bench.loadgen",
            url=url,
            secret=secret,
            out=out,
            requests=self.requests,
            warmup=self.warmup,
            workers=self.workers,
            installations=self.installations,
            time_limit=self.time_limit,
        )


@dataclass(frozen=True, slots=True)
class Driven:
    """What a generator reported (its JSON), and the CPU seconds the server and PostgreSQL spent meanwhile."""

    result: dict[str, Any]
    server_cpu_s: float
    database_cpu_s: float | None
    """None when PostgreSQL's processes are not visible from here (another machine, another user)."""


async def drive(
    server: Listening,
    name: str,
    generator: list[str],
    out: Path,
    *,
    work_dir: Path,
    timeout: float,
    database_url: str | None,
    samples: Path | None = None,
) -> Driven:
    """Run `generator` against `server` to its end and read what it wrote to `out`.

    The server's CPU (its children's too) is metered while the generator runs, and PostgreSQL's when
    `database_url` is given; with `samples`, py-spy samples the server meanwhile. The server must outlive it.
    """
    meter = CpuMeter(server.child.pid, await find_postmaster(database_url) if database_url else None)
    async with profile.attached(server.child.pid, samples, work_dir / "py-spy.log"):
        meter.start()
        async with spawn(name, generator, child_env({}), work_dir) as sender:
            await run_to_end(sender, timeout)
        server_cpu, database_cpu = meter.stop()
    server.check_alive()
    return Driven(_read(out), server_cpu, database_cpu)


async def run_timed(
    name: str, argv: list[str], out: Path, *, work_dir: Path, timeout: float, samples: Path | None = None
) -> dict[str, Any]:
    """Run `argv`, a child that times its own work, to its end (under py-spy with `samples`); return what it
    wrote to `out`."""
    async with spawn(name, profile.recorded(argv, samples), child_env({}), work_dir) as child:
        await run_to_end(child, timeout)
    profile.summarise(samples)
    return _read(out)


def _read(out: Path) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(out.read_bytes())
    return result


def check_answers(what: str, result: Mapping[str, Any]) -> None:
    """Every request of a generator's run was answered 200: figures over refusals or errors mean nothing."""
    other = {code: n for code, n in result["statuses"].items() if code != "200"}
    if other or result["errors"]:
        msg = f"{what}: answers other than 200: {other}, client errors: {result['errors']}"
        raise CheckError(msg)


def per_request_us(seconds: float | None, requests: int) -> float | None:
    """CPU microseconds per request answered; None if the CPU was not visible or nothing was answered."""
    return None if seconds is None or not requests else seconds / requests * 1e6


async def interleaved(
    repetitions: int,
    variants: Sequence[Variant],
    once: Callable[[Variant, int], Awaitable[Measured]],
    report: Callable[[Variant, int, Measured], str],
) -> list[Measured]:
    """`once(variant, repetition)` for every variant in turn, each repetition (from 1), so that a noisy minute
    on a shared machine hurts all variants alike; `report`'s line is printed as each run ends."""
    runs = []
    for repetition in range(1, repetitions + 1):
        for variant in variants:
            run = await once(variant, repetition)
            print(f"  {report(variant, repetition, run)}", flush=True)
            runs.append(run)
    return runs
