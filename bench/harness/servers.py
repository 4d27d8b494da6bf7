"""The servers under test, each started fresh for every scenario and stopped after it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chatconnect"
CHATCONNECT = Path(sys.executable).parent / "chatconnect"
BENCH_KEYSPACE = "chatconnect_bench"
TEST_CODE = "246810"
"""The code `chatconnect up` accepts for fictional numbers (its development default)."""


def say(text: str) -> None:
    print(f"bench: {text}", flush=True)


@dataclass
class Target:
    """One server under test: what the generator needs to reach it."""

    name: str
    peer: str
    """The generator's -peer: chatconnect or ejabberd."""
    args: list[str]
    """The generator's flags that point it at the server."""
    pids: list[int] = field(default_factory=list)
    """The server's processes, for memory readings."""


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip():
                values[key.strip()] = value.strip()
    return values


def _wait_for_line(process: subprocess.Popen[str], marker: str, timeout: float) -> None:
    """Reads the server's output until `marker`, echoing nothing (the log is kept)."""
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        lines.append(line)
        if marker in line:
            return
    raise SystemExit(
        "bench: the server did not start:\n"
        + "".join(lines[-30:])
        + "\nfix the error above and run `make bench` again"
    )


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants: with server.processes above 1 the server is a
    supervisor and its server processes, and memory is read over all of them."""
    tree = [pid]
    for parent in tree:  # grows while it is walked: breadth first
        with contextlib.suppress(FileNotFoundError):
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            tree.extend(int(child) for child in children)
    return tree


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def chatconnect(store: str, port: int) -> Iterator[Target]:
    """`chatconnect up` on a fresh store: a new data directory (embedded) or a freshly
    dropped bench keyspace on the test Cassandra, with the test Redis (distributed)."""
    env = dict(os.environ)
    env["CHATCONNECT_SERVER__DRAIN_SECONDS"] = "1"
    # The generator plays thousands of devices from one address, far beyond what one
    # device may do: raise the per-device limits it would otherwise trip over, so that
    # what is measured is the server, not its abuse protection.
    env["CHATCONNECT_ROUTER__SENDS_PER_SECOND"] = "100000"
    env["CHATCONNECT_ROUTER__SEND_BURST"] = "100000"
    command = [str(CHATCONNECT), "up", "--listen", f"127.0.0.1:{port}"]
    with tempfile.TemporaryDirectory(prefix="chatconnect-bench-") as data:
        if store == "embedded":
            command += ["--data-dir", data]
        else:
            testenv = read_env_file(CACHE / "testenv" / "env")
            host, _, cql_port = testenv["CHATCONNECT_TEST_CASSANDRA"].partition(":")
            _drop_keyspace(host, int(cql_port))
            env.update(
                CHATCONNECT_SERVER__REDIS_URL=testenv["CHATCONNECT_TEST_REDIS_URL"].rsplit("/", 1)[
                    0
                ]
                + "/9",
                CHATCONNECT_SCYLLA__CONTACT_POINTS=host,
                CHATCONNECT_SCYLLA__PORT=cql_port,
                CHATCONNECT_SCYLLA__KEYSPACE=BENCH_KEYSPACE,
            )
            command += ["--store", "scylla", "--data-dir", data]
            _flush_redis(env["CHATCONNECT_SERVER__REDIS_URL"])
        log = Path(data) / "server.log"
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=data
        )
        try:
            _wait_for_line(process, "Stop with Ctrl-C", timeout=300)
            # Keep reading the server's output into a file so its pipe never fills.
            assert process.stdout is not None
            tee = subprocess.Popen(["cat"], stdin=process.stdout, stdout=log.open("w"))
            yield Target(
                name=f"chatconnect-{'embedded' if store == 'embedded' else 'scylla'}",
                peer="chatconnect",
                args=["-target", f"127.0.0.1:{port}", "-test-code", TEST_CODE],
                pids=process_tree(process.pid),
            )
        finally:
            _stop(process)
            with contextlib.suppress(NameError):
                tee.wait(timeout=5)


def _drop_keyspace(host: str, port: int) -> None:
    """A fresh keyspace per run: every scenario starts from an empty store."""
    from cassandra.cluster import Cluster

    cluster = Cluster([host], port=port, protocol_version=4)
    try:
        session = cluster.connect()
        session.execute(f"DROP KEYSPACE IF EXISTS {BENCH_KEYSPACE}", timeout=120)
    finally:
        cluster.shutdown()


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@contextlib.contextmanager
def ejabberd() -> Iterator[Target]:
    """ejabberd from Debian's package, started empty by tools/peerenv (archiving on)."""
    peerenv = str(ROOT / "tools" / "peerenv")
    subprocess.run([peerenv, "down", "--purge"], check=True)
    subprocess.run([peerenv, "up"], check=True)
    try:
        values = read_env_file(CACHE / "peerenv" / "env")
        yield Target(
            name="ejabberd",
            peer="ejabberd",
            args=[
                "-xmpp-addr",
                values["PEERENV_XMPP_ADDR"],
                "-xmpp-domain",
                values["PEERENV_XMPP_DOMAIN"],
                "-xmpp-api",
                values["PEERENV_API_URL"],
            ],
            pids=[int(values["PEERENV_PID"])],
        )
    finally:
        subprocess.run([peerenv, "down"], check=True)


def versions() -> dict[str, str]:
    """What ran, for the report."""
    found: dict[str, str] = {}
    with contextlib.suppress(Exception):
        found["chatconnect"] = subprocess.run(
            [str(CHATCONNECT), "--version"], capture_output=True, text=True, check=False
        ).stdout.split()[-1]
    with contextlib.suppress(Exception):
        found["ejabberd"] = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "ejabberd"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    with contextlib.suppress(Exception):
        status = (
            subprocess.run(
                [str(ROOT / "tools" / "testenv"), "status"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            + "\n"
        )
        found["cassandra"] = status.split("cassandra: ", 1)[1].split()[0]
    with contextlib.suppress(Exception):
        found["redis"] = (
            subprocess.run(
                ["redis-server", "--version"], capture_output=True, text=True, check=False
            )
            .stdout.split()[2]
            .removeprefix("v=")
        )
    with contextlib.suppress(Exception):
        found["go"] = (
            subprocess.run(["go", "version"], capture_output=True, text=True, check=False)
            .stdout.split()[2]
            .removeprefix("go")
        )
    found["python"] = sys.version.split()[0]
    found["erlang"] = _erlang_version()
    return found


def _erlang_version() -> str:
    erl = shutil.which("erl")
    if erl is None:
        return ""
    out = subprocess.run(
        [erl, "-noshell", "-eval", 'io:format("~s", [erlang:system_info(otp_release)]), halt().'],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()
