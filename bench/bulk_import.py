"""Scenario `import`: an NDJSON file through `tracker import`, against a raw COPY of the same lines.

The file holds the log's realistic mix (`bench.bulk_log.notifications`), one notification per line
in the webhook shape. Ours: the `tracker import` command's own path, `Tracker.import_file` inside
`async with Tracker(...)` on uvloop (no projections following, as the command runs it), timed from the
first line read to the report, in a child process. The baseline, the physical limit here: the same
lines read in the same 1 MiB chunks and COPYed, one jsonb row each, into a bare table with no key and
no index. A second baseline, what our storage costs at least: the rows the tracker's run stored (its
columns: payload, raw bytes and metadata; its four indexes), COPYed into the log of a fresh database.
Each run gets a fresh database: an import of a file already imported appends nothing.

    python -m bench.bulk_import tracker|copy|log-copy --file FILE --database-url URL --out FILE  # one run
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uvloop

from bench import bulk_log, database, profile
from bench.cpu import CpuMeter, find_postmaster
from bench.harness import CheckError, command, interleaved, migrate, run_timed
from bench.replay import peak_rss_mb
from bench.stats import Spread, spread
from bench.table import Row
from tracker import Tracker
from tracker.collector import tune_collector
from tracker.settings import Settings
from tracker.store.database import init_connection

GOAL_VS_COPY = 0.5
BARE_TABLE = "bare_import"
_CHUNK_BYTES = 1 << 20
"""As `tracker.ingest.files` reads."""
_TIMEOUT = 1_800.0
MODES = ("tracker", "copy", "log-copy")
LOG_COLUMNS = ("stream_id", "version", "type", "topic", "payload", "raw", "metadata", "dedupe_key", "received_at")
"""What the log-copy baseline COPYs: every column the tracker writes (the position is the log's own)."""


@dataclass(frozen=True, slots=True)
class File:
    lines: int
    installations: int


@dataclass(frozen=True, slots=True)
class Run:
    mode: str
    lines: int
    result: dict[str, Any]
    database_cpu_s: float | None
    """PostgreSQL's CPU over the child's whole life (its start-up's few queries too)."""

    @property
    def per_second(self) -> float:
        return float(self.lines / self.result["seconds"])

    @property
    def cpu_us_per_line(self) -> float:
        return float(self.result["cpu_s"] / self.lines * 1e6)

    @property
    def database_us_per_line(self) -> float | None:
        return None if self.database_cpu_s is None else self.database_cpu_s / self.lines * 1e6


def write_file(path: Path, file: File) -> None:
    with path.open("wb") as out:
        for line in bulk_log.notifications(file.lines, file.installations, seed=11):
            out.write(line + b"\n")


async def tracker_import(url: str, path: Path) -> dict[str, Any]:
    """What `tracker import FILE` does, timed without start-up (connect, migrate) and shut-down."""
    async with Tracker(Settings.from_env(), database_url=url, follow_projections=False) as tracker:
        started, cpu = time.perf_counter(), time.process_time()
        report = await tracker.import_file(path)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {**asdict(report), "seconds": seconds, "cpu_s": cpu}


async def raw_copy(url: str, path: Path) -> dict[str, Any]:
    """COPY every line, as jsonb, into a table with no key: what storing the lines costs at least."""
    conn = await asyncpg.connect(url)
    try:
        await init_connection(conn)  # the tracker's binary jsonb codec: the line's bytes go as they are
        await conn.execute(f"CREATE TABLE {BARE_TABLE} (line jsonb NOT NULL)")
        started, cpu = time.perf_counter(), time.process_time()
        lines = 0
        with path.open("rb") as file:
            while chunk := file.readlines(_CHUNK_BYTES):  # page-cached: reading is not what is timed here
                records = [(line.rstrip(b"\r\n"),) for line in chunk if line.strip()]
                await conn.copy_records_to_table(BARE_TABLE, records=records, columns=["line"])
                lines += len(records)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await conn.close()
    return {"lines": lines, "appended": lines, "seconds": seconds, "cpu_s": cpu}


async def log_copy(url: str, path: Path) -> dict[str, Any]:
    """COPY the rows a tracker run stored (`path`, binary COPY format) into the log of a fresh database."""
    await migrate(url)  # the log's table, its indexes and constraints
    conn = await asyncpg.connect(url)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        status = await conn.copy_to_table("events", source=path, columns=LOG_COLUMNS, format="binary")
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await conn.close()
    rows = int(status.split()[-1])
    return {"lines": rows, "appended": rows, "seconds": seconds, "cpu_s": cpu}


async def save_log(url: str, path: Path) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_from_query(
            f"SELECT {', '.join(LOG_COLUMNS)} FROM events ORDER BY position", output=path, format="binary"
        )
    finally:
        await conn.close()


async def run_once(
    mode: str, server_url: str, path: Path, file: File, *, work_dir: Path, repetition: int, profile_dir: Path | None
) -> Run:
    """One timed import on a fresh database; with `profile_dir`, the tracker's runs under py-spy."""
    name = f"import-{mode}-{repetition}"
    saved = work_dir / f"import-log-{repetition}.copy"
    async with database.throwaway_database(server_url) as url:
        out = work_dir / f"{name}.json"
        argv = command("bench.bulk_import", mode, file=saved if mode == "log-copy" else path, database_url=url, out=out)
        samples = profile.samples_path(profile_dir, f"import-{repetition}") if mode == "tracker" else None
        meter = CpuMeter(None, await find_postmaster(url))
        meter.start()
        result = await run_timed(name, argv, out, work_dir=work_dir, timeout=_TIMEOUT, samples=samples)
        _, database_cpu = meter.stop()
        run = Run(mode, file.lines, result, database_cpu)
        stored = await database.count_rows(url, BARE_TABLE if mode == "copy" else "events")
        if mode == "tracker":  # what the log-copy baseline of this repetition stores
            await save_log(url, saved)
    if run.result["lines"] != file.lines or run.result["appended"] != file.lines or stored != file.lines:
        msg = f"import {mode}: {file.lines} lines in the file, report {run.result}, {stored} rows stored"
        raise CheckError(msg)
    return run


async def measure(server_url: str, file: File, repetitions: int, work_dir: Path, profile_dir: Path | None) -> list[Run]:
    path = work_dir / "import.ndjson"
    started = time.perf_counter()
    write_file(path, file)
    size_mb = path.stat().st_size / 1e6
    print(f"  import: wrote {file.lines:,} lines ({size_mb:,.0f} MB) in {time.perf_counter() - started:.1f} s")

    async def once(mode: str, repetition: int) -> Run:
        return await run_once(
            mode, server_url, path, file, work_dir=work_dir, repetition=repetition, profile_dir=profile_dir
        )

    def report(mode: str, repetition: int, run: Run) -> str:
        return (
            f"import {mode:<7} #{repetition}: {run.per_second:8,.0f} lines/s"
            f"  CPU {run.cpu_us_per_line:5.0f} us/line, PostgreSQL {run.database_us_per_line or 0:5.0f} us/line"
        )

    return await interleaved(repetitions, MODES, once, report)


def rows(runs: Sequence[Run], file: File) -> list[Row]:
    def spread_of(mode: str, value: Callable[[Run], float | None]) -> Spread | None:
        return spread(value(run) for run in runs if run.mode == mode)

    def rate(run: Run) -> float:
        return run.per_second

    def database_cpu(run: Run) -> float | None:
        return run.database_us_per_line

    ours, theirs, floor = spread_of("tracker", rate), spread_of("copy", rate), spread_of("log-copy", rate)
    assert ours is not None and theirs is not None and floor is not None  # every run has a rate
    baseline = "raw asyncpg COPY into a bare jsonb table"
    log_baseline = "COPY of the stored rows into the log's own table (its columns and indexes)"
    context: tuple[tuple[str, Callable[[Run], float | None]], ...] = (
        ("importing process CPU us/line", lambda r: r.cpu_us_per_line),
        ("PostgreSQL CPU us/line", database_cpu),
        ("peak RSS MB of the importing process", lambda r: r.result["peak_rss_mb"]),
    )
    return [
        Row(
            "import",
            f"notifications/s, {file.lines:,} NDJSON lines",
            ours,
            baseline,
            theirs,
            f">= {GOAL_VS_COPY}x",
            ours.median >= GOAL_VS_COPY * theirs.median,
        ),
        Row("import", f"notifications/s, {file.lines:,} NDJSON lines", ours, log_baseline, floor),
        *(
            Row("import", measure, spread_of("tracker", value), baseline, spread_of("copy", value))
            for measure, value in context
        ),
        Row(
            "import",
            "PostgreSQL CPU us/line",
            spread_of("tracker", database_cpu),
            log_baseline,
            spread_of("log-copy", database_cpu),
        ),
    ]


def as_json(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [asdict(run) for run in runs]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_import", description=__doc__)
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    work = {"tracker": tracker_import, "copy": raw_copy, "log-copy": log_copy}[args.mode]
    tune_collector()  # as `tracker import` does, for the baselines too
    result = uvloop.run(work(args.database_url, args.file))
    args.out.write_bytes(orjson.dumps({**result, "mode": args.mode, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
