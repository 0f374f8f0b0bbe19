"""A free loopback port from a range of our own: the Kinesis and schemathesis servers each have a share."""

from __future__ import annotations

import socket


def free_port(ports: range) -> int:
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    msg = f"no free port in {ports.start}-{ports.stop - 1}"
    raise OSError(msg)
