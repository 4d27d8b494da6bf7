"""bench/grpc_floor.py: the bare gRPC server and the Go `grpcfloor` command together
measure what each open connection costs the server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_floor_reads_the_bare_servers_memory_for_every_connection() -> None:
    measured = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "grpc_floor.py"),
            "--call",
            "stream",
            "--connections",
            "200",
            "--hold",
            "1s",
            "--port",
            str(_free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert measured.returncode == 0, measured.stderr[-3000:]
    assert "opening 200 connections, each holding: stream" in measured.stdout
    result = json.loads(measured.stdout.strip().splitlines()[-1])
    assert result["call"] == "stream"
    assert result["connections"] == 200
    # Each open stream costs the server memory; a reading of the wrong process would not
    # grow with the connections.
    assert result["kib_per_connection"] > 5, result
    assert result["rss_after_mib"] > result["rss_before_mib"]
