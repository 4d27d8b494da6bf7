"""Where the real test servers are (started by `tools/testenv up`, which `make test` runs).

A test that needs a server and cannot find it fails with what to do: it is never skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
ENV_FILE = CACHE / "chatconnect" / "testenv" / "env"


def _setting(name: str) -> str:
    if name in os.environ:
        return os.environ[name]
    if ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == name:
                return value.strip()
    pytest.fail(
        f"{name} is not set and {ENV_FILE} does not name it: start the test servers with "
        "`tools/testenv up` (make test does this)"
    )


def redis_url() -> str:
    """The URL of the test Redis."""
    return _setting("CHATCONNECT_TEST_REDIS_URL")


def cassandra_contact() -> str:
    """host:port of the test Cassandra."""
    return _setting("CHATCONNECT_TEST_CASSANDRA")


class PrivateRedis:
    """A Redis of one test's own (the binary `tools/testenv` installed), without
    persistence: killed and started again, it comes back empty, as after losing its state."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Starts it (empty) and waits until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run `tools/testenv up`")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"private redis on port {self.port} did not start")

    def kill(self) -> None:
        """SIGKILL: whatever it held is gone."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None


@contextlib.contextmanager
def private_redis(directory: Path) -> Iterator[PrivateRedis]:
    """A started PrivateRedis, killed at the end."""
    redis = PrivateRedis(directory)
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


TESTENV = Path(__file__).resolve().parent.parent / "tools" / "testenv"


def run_testenv(*args: str) -> None:
    """Runs `tools/testenv` (to stop or start a test server in a fault test)."""
    subprocess.run([sys.executable, str(TESTENV), *args], check=True, timeout=300)


def store_environment(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that puts a server subprocess on the store named by request.param
    (embedded: the SQLite default; scylla: the test keyspace)."""
    if request.param == "embedded":
        return {}
    config = request.getfixturevalue("scylla_keyspace")
    return {
        "CHATCONNECT_SERVER__STORE": "scylla",
        "CHATCONNECT_SCYLLA__CONTACT_POINTS": config.contact_points,
        "CHATCONNECT_SCYLLA__PORT": str(config.port),
        "CHATCONNECT_SCYLLA__KEYSPACE": config.keyspace,
    }


READY_MARKER = "clients connect to:"


def start_chatconnect(
    arguments: list[str], environment: dict[str, str], *, listen: str, data_dir: Path
) -> subprocess.Popen[str]:
    """`chatconnect <arguments> --listen <listen> --data-dir <data_dir>` as a subprocess,
    its output (stdout and stderr) on one text pipe."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatconnect.cli",
            *arguments,
            "--listen",
            listen,
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )


def wait_until_serving(process: subprocess.Popen[str], *, timeout: float = 30) -> str:
    """Reads a server subprocess's output until it says where clients connect; returns
    that address."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen.append(line)
        if READY_MARKER in line:
            return line.split(READY_MARKER, 1)[1].strip()
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"server did not start (exit {process.poll()}):\n" + "".join(seen[-30:]))
