"""What the `tracker` command shows people: the status table, help for every option, one-line errors,
log lines in the format asked for, and import progress as lines when stderr is not a terminal."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson
import pytest

from tracker.cli.parser import build_parser
from tracker.cli.status_table import render, table

from .notifications import config, installation_event, new_id
from .test_cli import environment, free_port

STATUS = {
    "events": 1234, "head": 1240, "quarantined": 2, "quarantine": {"pending": 2, "replayed": 1, "discarded": 0},
    "projections": [
        {"name": "installations", "position": 1234, "lag": 0, "lagSeconds": 0.0, "heartbeatAgeSeconds": 0.4,
         "deadLetters": {"parked": 1}, "rebuild": None},
        {"name": "connections", "position": 1000, "lag": 234, "lagSeconds": 2.5, "heartbeatAgeSeconds": None,
         "deadLetters": {}, "rebuild": {"phase": "replaying", "eventsDone": 500, "eventsTotal": 1234,
                                        "finishedAt": None, "error": None}},
    ],
    "signaturesVerified": True, "warnings": [],
}  # fmt: skip
HEALTH = {"installations": {"healthy": 7, "degraded": 2, "unhealthy": 1, "deleted": 0, "total": 10},
          "openIssues": {"connection_error": 1}}  # fmt: skip


def test_the_status_table_shows_the_log_read_models_quarantine_and_health() -> None:
    lines = render(STATUS, HEALTH).splitlines()

    assert lines[0] == "Log           1,234 events, head at position 1,240"
    assert lines[1] == "Quarantine    2 pending, 1 replayed, 0 discarded"
    assert "Installations 7 healthy, 2 degraded, 1 unhealthy, 0 deleted (10 in all)" in lines
    assert "Open issues   1 connection_error" in lines
    header = next(line for line in lines if line.startswith("READ MODEL"))
    rows = {line.split()[0]: line for line in lines[lines.index(header) + 1 :] if line}
    assert rows["installations"].split()[1:4] == ["1,234", "0", "0.0"]
    assert "1 parked" in rows["installations"]
    assert rows["connections"].split()[1:3] == ["1,000", "234"]
    assert "never" in rows["connections"]
    assert "replaying, 500/1,234 events" in rows["connections"]
    # Numbers line up on the right, under their header.
    assert header.index("POSITION") + len("POSITION") == rows["installations"].index("1,234") + len("1,234")
    assert not any(line.startswith("KINESIS") for line in lines)  # no shards: no table for them


def test_the_status_table_lists_kinesis_shards_when_the_status_has_them() -> None:
    shards = [{"shardId": "shardId-000", "owner": "host-1", "millisBehindLatest": 1500, "checkpoint": "4953",
               "closed": False, "finished": False},
              {"shardId": "shardId-001", "owner": None, "millisBehindLatest": None, "checkpoint": None,
               "closed": True, "finished": True}]  # fmt: skip
    lines = render({**STATUS, "kinesis": [{"stream": "orders", "shards": shards}]}, HEALTH).splitlines()

    header = lines.index(next(line for line in lines if line.startswith("KINESIS STREAM")))
    assert lines[header + 1].split() == ["orders", "shardId-000", "host-1", "1,500", "4953", "open"]
    assert lines[header + 2].split() == ["orders", "shardId-001", "-", "-", "-", "finished"]


def test_a_table_aligns_columns_of_numbers_right() -> None:
    assert table(("name", "n"), [["a", "5"], ["bbb", "1,000"]]) == ["NAME      N", "a         5", "bbb   1,000"]


def test_every_option_of_every_command_is_explained() -> None:
    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {"serve", "project", "migrate", "rebuild", "import", "status"} <= set(subcommands.choices)
    for name, command in subcommands.choices.items():
        options = {action.dest: action.help for action in command._actions}
        assert {"log_format", "log_level"} <= set(options), name
        assert all(options.values()), f"tracker {name}: options without help: {options}"


async def run(*args: str, env: dict[str, str], timeout: float = 120) -> tuple[int, str, str]:
    """The command in a process of its own: its exit code, stdout and stderr (not a terminal)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tracker", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, out.decode(), err.decode()


def json_lines(err: str) -> list[dict[str, object]]:
    """Every stderr line as the JSON object it must be."""
    records = []
    for line in err.splitlines():
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return records


async def test_status_prints_the_table_and_json_on_request(database_url: str) -> None:
    env = environment(TRACKER_DATABASE_URL=database_url)

    code, out, err = await run("status", env=env)
    assert code == 0, err
    assert out.startswith("Log ")
    assert "READ MODEL" in out
    assert "installations" in out

    code, out, err = await run("status", "--json", env=env)
    assert code == 0, err
    assert {p["name"] for p in orjson.loads(out)["projections"]} >= {"installations", "connections", "destinations"}


async def test_help_of_every_command_names_the_log_options() -> None:
    for command in ("serve", "status", "import", "rebuild", "migrate", "project"):
        code, out, _ = await run(command, "--help", env=environment())
        assert code == 0, command
        assert "--log-format {json,text}" in out, command


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_an_unreachable_database_is_one_line_without_the_password(log_format: str) -> None:
    url = f"postgresql://tracker:hunter2-not-logged@127.0.0.1:{free_port()}/tracker"

    code, out, err = await run("status", "--log-format", log_format, env=environment(TRACKER_DATABASE_URL=url))

    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert "hunter2-not-logged" not in err
    message = orjson.loads(lines[0])["event"] if log_format == "json" else lines[0]
    assert "cannot reach PostgreSQL at 127.0.0.1:" in message
    assert "/tracker (TRACKER_DATABASE_URL)" in message


async def test_a_missing_file_and_an_unknown_read_model_are_one_line_each(database_url: str, tmp_path: Path) -> None:
    env = environment(TRACKER_DATABASE_URL=database_url)

    code, _, err = await run("import", str(tmp_path / "missing.ndjson"), "--log-format", "text", env=env)
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.rstrip().endswith(f"ERROR tracker: {tmp_path / 'missing.ndjson'}: No such file or directory")

    code, _, err = await run("rebuild", "nope", env=env)
    assert code == 1
    assert [orjson.loads(line)["level"] for line in err.splitlines()] == ["ERROR"]
    assert "nope" in orjson.loads(err)["event"]


async def test_import_reports_progress_as_log_lines_when_stderr_is_not_a_terminal(
    database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "in.ndjson"
    lines = [installation_event("installation.created", new_id("inst"), config=config()) for _ in range(3)]
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")

    code, out, err = await run("import", str(path), env=environment(TRACKER_DATABASE_URL=database_url))

    assert code == 0, err
    assert "3 lines: 3 appended" in out
    records = json_lines(err)
    progress = [r for r in records if r["event"] == "import progress"]
    assert progress[-1]["percent"] == 100.0
    assert progress[-1]["bytes_done"] == progress[-1]["bytes_total"] == path.stat().st_size
    assert "\r" not in err  # no bar drawn into a pipe
