"""The `chatconnect` command as a user runs it: up, demo, Ctrl-C, and its errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.servers import cassandra_contact, redis_url

CHATCONNECT = [sys.executable, "-m", "chatconnect.cli"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _banner(up: subprocess.Popen[str], *, timeout: float) -> str:
    """What `up` printed until it said how to stop it."""
    assert up.stdout is not None
    banner = ""
    deadline = time.monotonic() + timeout
    while "Stop with Ctrl-C" not in banner and time.monotonic() < deadline:
        line = up.stdout.readline()
        if not line:
            break
        banner += line
    return banner


def _demo(address: str) -> subprocess.CompletedProcess[str]:
    """Runs `chatconnect demo` against `address` and checks that every check passed."""
    demo = subprocess.run(
        [*CHATCONNECT, "demo", "--target", address],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "demo: all 9 checks passed" in demo.stdout
    return demo


def test_up_then_demo_then_ctrl_c(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"
    up = subprocess.Popen(
        [*CHATCONNECT, "up", "--listen", address, "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        banner = _banner(up, timeout=30)
        assert f"clients connect to:  {address}" in banner, banner
        demo = _demo(address)
        assert "FAIL" not in demo.stdout
        # A second server on the same port must refuse to start, not quietly share it.
        second = subprocess.run(
            [*CHATCONNECT, "up", "--listen", address, "--data-dir", str(tmp_path / "other")],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(),
        )
        assert second.returncode != 0
        assert f"cannot listen on {address}" in second.stderr, second.stderr
        assert "is another chatconnect running?" in second.stderr
    finally:
        up.send_signal(signal.SIGINT)
        _out, err = up.communicate(timeout=30)
    assert up.returncode == 0, err
    assert "draining" in err and "stopped" in err
    assert (tmp_path / "data" / "chatconnect.db").exists()


def test_demo_against_nothing_says_what_to_do() -> None:
    demo = subprocess.run(
        [*CHATCONNECT, "demo", "--target", f"127.0.0.1:{_free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert demo.returncode == 1
    assert "make up" in demo.stdout


def test_serving_a_planned_service_is_refused_clearly() -> None:
    result = subprocess.run(
        [*CHATCONNECT, "serve", "media"], capture_output=True, text=True, timeout=30, env=_env()
    )
    assert result.returncode == 2
    assert "not served by this release yet" in result.stderr


def test_bad_setting_names_the_key_and_variable(tmp_path: Path) -> None:
    env = {**_env(), "CHATCONNECT_ROUTER__MAX_ENVELOPE_BYTES": "lots"}
    result = subprocess.run(
        [*CHATCONNECT, "up", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 2
    assert "router.max_envelope_bytes" in result.stderr
    assert "CHATCONNECT_ROUTER__MAX_ENVELOPE_BYTES" in result.stderr


def _scylla_env(keyspace: str) -> dict[str, str]:
    host, _, port = cassandra_contact().rpartition(":")
    return {
        **_env(),
        "CHATCONNECT_SERVER__REDIS_URL": redis_url(),
        "CHATCONNECT_SCYLLA__CONTACT_POINTS": host,
        "CHATCONNECT_SCYLLA__PORT": port,
        "CHATCONNECT_SCYLLA__KEYSPACE": keyspace,
        "CHATCONNECT_SCYLLA__REPLICATION": "datacenter1:1",
    }


def _drop_keyspace(keyspace: str) -> None:
    from cassandra.cluster import Cluster

    host, _, port = cassandra_contact().rpartition(":")
    cluster = Cluster([host], port=int(port), protocol_version=4)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
    finally:
        cluster.shutdown()


def test_serve_refuses_an_unmigrated_keyspace_until_migrate_runs(tmp_path: Path) -> None:
    keyspace = f"cli_{uuid.uuid4().hex[:12]}"
    env = {**_scylla_env(keyspace), "CHATCONNECT_SERVER__STORE": "scylla",
           "CHATCONNECT_SERVER__BUS": "redis"}  # fmt: skip
    serve = [*CHATCONNECT, "serve", "gateway", "router", "--listen",
             f"127.0.0.1:{_free_port()}", "--data-dir", str(tmp_path / "data")]  # fmt: skip
    try:
        refused = subprocess.run(serve, capture_output=True, text=True, timeout=60, env=env)
        assert refused.returncode != 0
        assert "chatconnect migrate" in refused.stderr, refused.stderr
        migrate = subprocess.run(
            [*CHATCONNECT, "migrate"], capture_output=True, text=True, timeout=120, env=env
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        assert "applying 1/" in migrate.stdout
        assert f"keyspace {keyspace} is at schema version" in migrate.stdout
        again = subprocess.run(
            [*CHATCONNECT, "migrate"], capture_output=True, text=True, timeout=120, env=env
        )
        assert again.returncode == 0 and "up to date" in again.stdout, again.stdout
    finally:
        _drop_keyspace(keyspace)


def test_up_on_scylla_and_redis_passes_the_demo(tmp_path: Path) -> None:
    keyspace = f"cli_{uuid.uuid4().hex[:12]}"
    address = f"127.0.0.1:{_free_port()}"
    up = subprocess.Popen(
        [
            *CHATCONNECT,
            *("up", "--store", "scylla", "--listen", address),
            *("--data-dir", str(tmp_path / "data")),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_scylla_env(keyspace),
    )
    try:
        banner = _banner(up, timeout=60)
        assert "migrate: applied 1" in banner, banner
        assert f"keyspace {keyspace}" in banner, banner
        _demo(address)
    finally:
        up.send_signal(signal.SIGINT)
        _out, err = up.communicate(timeout=30)
        _drop_keyspace(keyspace)
    assert up.returncode == 0, err
    assert not (tmp_path / "data" / "chatconnect.db").exists()  # nothing went to SQLite
