"""moto in server mode for the `kinesis` scenario, with puts made linear.

moto 5 finds a shard's last sequence number by listing all its records (`Shard.get_max_sequence_number`),
so each put costs as much as the shard holds and filling a shard of 25,000 records takes minutes. Here
it reads the last key instead: the same number, at once. Nothing a consumer sees changes (GetRecords,
ListShards and the sequence numbers are moto's own).

    python -m bench.moto_server --port PORT
"""

from __future__ import annotations

import argparse

from moto.kinesis.models import Shard
from moto.server import main as moto_main


def _last_sequence_number(shard: Shard) -> int:
    return next(reversed(shard.records), 0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.moto_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    Shard.get_max_sequence_number = _last_sequence_number  # type: ignore[method-assign]
    moto_main(["-H", args.host, "-p", str(args.port)])


if __name__ == "__main__":
    main()
