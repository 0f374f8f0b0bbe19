"""`tracker status` for people: the `/v1/status` and `/v1/health` documents as aligned tables.

Pure: no I/O. Fields the documents may lack (an older or newer tracker) are left out, not guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def render(status: Mapping[str, Any], health: Mapping[str, Any]) -> str:
    quarantine = status.get("quarantine") or {"pending": status.get("quarantined", 0)}
    counts = health["installations"]
    lines = [
        f"Log           {status['events']:,} events, head at position {status['head']:,}",
        "Quarantine    " + ", ".join(f"{count:,} {state}" for state, count in quarantine.items()),
        "Signatures    " + ("checked" if status.get("signaturesVerified") else "NOT checked"),
        "Installations "
        + ", ".join(f"{counts.get(state, 0):,} {state}" for state in ("healthy", "degraded", "unhealthy", "deleted"))
        + f" ({counts.get('total', 0):,} in all)",
        "Open issues   " + (", ".join(f"{n:,} {code}" for code, n in health["openIssues"].items()) or "none"),
        "",
        *table(
            ("read model", "position", "lag", "lag s", "heartbeat", "dead letters", "last rebuild"),
            [_read_model(model) for model in status["projections"]],
        ),
    ]
    shards = [(stream["stream"], shard) for stream in status.get("kinesis") or [] for shard in stream["shards"]]
    if shards:
        lines += [
            "",
            *table(
                ("kinesis stream", "shard", "owner", "behind ms", "checkpoint", "state"),
                [_shard(stream, shard) for stream, shard in shards],
            ),
        ]
    for warning in status.get("warnings") or []:
        lines += ["", f"warning: {warning}"]
    return "\n".join(lines)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns as wide as their widest cell; a column of numbers (or "-") right-aligned, header included."""
    columns = list(zip(headers, *rows, strict=True))
    widths = [max(len(cell) for cell in column) for column in columns]
    numeric = [bool(rows) and all(_number(cell) or cell == "-" for cell in column[1:]) for column in columns]

    def line(cells: Sequence[str]) -> str:
        aligned = (
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        )
        return "  ".join(aligned).rstrip()

    return [line([header.upper() for header in headers]), *(line(row) for row in rows)]


def _number(cell: str) -> bool:
    return cell.replace(",", "").replace(".", "", 1).isdigit()


def _read_model(model: Mapping[str, Any]) -> list[str]:
    heartbeat = model.get("heartbeatAgeSeconds")
    letters = model.get("deadLetters") or {}
    return [
        model["name"],
        f"{model['position']:,}",
        f"{model['lag']:,}",
        f"{model.get('lagSeconds', 0):.1f}",
        "never" if heartbeat is None else f"{heartbeat:.1f} s ago",
        ", ".join(f"{n} {state}" for state, n in letters.items()) or "-",
        _rebuild(model.get("rebuild")),
    ]


def _rebuild(rebuild: Mapping[str, Any] | None) -> str:
    if not rebuild:
        return "-"
    done = f"{rebuild['eventsDone']:,}/{rebuild['eventsTotal']:,} events"
    if rebuild.get("error"):
        return f"failed ({done}): {rebuild['error']}"
    if rebuild.get("finishedAt") is None:
        return f"{rebuild['phase']}, {done}"
    return f"done {rebuild['finishedAt'][:19].replace('T', ' ')} ({done})"


def _shard(stream: str, shard: Mapping[str, Any]) -> list[str]:
    behind = shard.get("millisBehindLatest")
    state = "finished" if shard.get("finished") else "closed" if shard.get("closed") else "open"
    return [
        stream,
        shard["shardId"],
        shard.get("owner") or "-",
        "-" if behind is None else f"{behind:,}",
        shard.get("checkpoint") or "-",
        state,
    ]
