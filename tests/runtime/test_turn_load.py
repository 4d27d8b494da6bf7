"""The TURN-load path: real coturn allocations, counted as the operator counts them.

A private `turnserver` (Debian's coturn 4.6.1, installed by `tools/testenv up`) writes its
allocation status into a DB of the test Redis of its own (`--redis-statsdb ... dbname=9`);
coturn's own test client `turnutils_uclient` makes real allocations over TCP, relaying to a
`turnutils_peer`. An allocation's status key goes when the allocation ends: coturn DELs it
when the client closes its TCP connection, whether the client finished or was killed.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio as aioredis

from chatconnect.runtime.load_reports import count_turn_allocations
from tests.servers import redis_url

TURN_DB = 9
"""The test Redis DB index given to coturn's statsdb (no other test uses it)."""
REALM = "chatconnect.test"
USER, PASSWORD = "u", "p"
HOST = "127.0.0.1"
STATUS_KEY = re.compile(rf"turn/realm/{re.escape(REALM)}/user/{USER}/allocation/\d{{18}}/status")
"""The key coturn 4.6.1 writes for an allocation when it has a realm."""


def turn_db_url() -> str:
    return redis_url().rsplit("/", 1)[0] + f"/{TURN_DB}"


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian's coturn): run `tools/testenv up`")
    return path


def free_tcp_udp_port() -> int:
    """A loopback port free for both TCP and UDP (coturn listens on both)."""
    while True:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        ):
            tcp.bind((HOST, 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind((HOST, port))
            except OSError:
                continue
            return port


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((HOST, 0))
        return int(udp.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class Coturn:
    """A running private coturn and the UDP echo peer its clients relay to."""

    port: int
    peer_port: int
    log: Path
    directory: Path

    def uclient(self, name: str, *flags: str) -> subprocess.Popen[bytes]:
        """Starts turnutils_uclient over TCP (-t), one allocation per client (-c: no RTCP)."""
        out = (self.directory / f"{name}.log").open("wb")
        cmd = [
            binary("turnutils_uclient"), "-t", "-c", "-u", USER, "-w", PASSWORD,
            "-p", str(self.port), "-e", HOST, "-r", str(self.peer_port), *flags, HOST,
        ]  # fmt: skip
        with out:
            return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    """A private turnserver reporting into DB 9 of the test Redis (emptied first)."""
    url = urlsplit(turn_db_url())
    with redis.Redis.from_url(turn_db_url()) as sync:
        sync.flushdb()
    statsdb = f"ip={url.hostname} port={url.port or 6379} dbname={TURN_DB}"
    if url.password:
        statsdb += f" password={url.password}"
    port, peer_port = free_tcp_udp_port(), free_udp_port()
    # Relay ports above Linux's ephemeral range (32768-60999): no clash with client sockets.
    min_port = random.randrange(61000, 65000)
    conf = tmp_path / "turnserver.conf"
    conf.write_text("# empty: keeps /etc/turnserver.conf (syslog) out of this test\n")
    log = tmp_path / "turnserver.log"
    cmd = [
        binary("turnserver"), "-c", str(conf),
        "--listening-ip", HOST, "--relay-ip", HOST, "--listening-port", str(port),
        "--min-port", str(min_port), "--max-port", str(min_port + 300),
        "--lt-cred-mech", "--user", f"{USER}:{PASSWORD}", "--realm", REALM,
        "--redis-statsdb", statsdb,
        "--userdb", str(tmp_path / "turndb"),  # not the root-owned /var/lib/turn/turndb
        "--allow-loopback-peers",  # the echo peer is on loopback (4.6.1 forbids it by default)
        "--no-cli", "--no-tls", "--no-dtls",
        "--log-file", "stdout", "--simple-log", "--verbose",
        "--pidfile", str(tmp_path / "turnserver.pid"),
    ]  # fmt: skip
    peer_log = tmp_path / "peer.log"
    with log.open("wb") as out, peer_log.open("wb") as peer_out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        peer = subprocess.Popen(
            [binary("turnutils_peer"), "-L", HOST, "-p", str(peer_port)],
            stdout=peer_out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            if server.poll() is not None:
                pytest.fail(f"turnserver exited ({server.returncode}):\n{tail(log)}")
            with socket.socket() as probe:
                probe.settimeout(0.5)
                if probe.connect_ex((HOST, port)) == 0:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"turnserver did not listen on {HOST}:{port} in 10 s:\n{tail(log)}")
            time.sleep(0.05)
        yield Coturn(port=port, peer_port=peer_port, log=log, directory=tmp_path)
    finally:
        stop(server)
        stop(peer)
        with redis.Redis.from_url(turn_db_url()) as sync:
            sync.flushdb()


async def settles_at(
    client: aioredis.Redis, expected: int, what: str, turn: Coturn, timeout: float = 10
) -> None:
    """Polls until the count has been `expected` for 0.5 s (uclient's even-port retries
    make short-lived extra allocations), or fails with coturn's log."""
    deadline = time.monotonic() + timeout
    since: float | None = None
    seen = -1
    while time.monotonic() < deadline:
        seen = await count_turn_allocations(client)
        now = time.monotonic()
        if seen != expected:
            since = None
        elif since is None:
            since = now
        elif now - since >= 0.5:
            return
        await asyncio.sleep(0.05)
    pytest.fail(
        f"{what}: count_turn_allocations gave {seen}, expected {expected} "
        f"(coturn log:\n{tail(turn.log)})"
    )


async def test_count_follows_real_coturn_allocations(coturn: Coturn) -> None:
    client = aioredis.Redis.from_url(turn_db_url())
    held: subprocess.Popen[bytes] | None = None
    brief: subprocess.Popen[bytes] | None = None
    try:
        assert await count_turn_allocations(client) == 0

        # Three clients that keep their allocations open (-h) until they are killed.
        held = coturn.uclient("held", "-h", "-m", "3", "-n", "2")
        await settles_at(client, 3, "3 held allocations open", coturn)

        # What coturn 4.6.1 wrote: one key per allocation, with the realm, and no TTL.
        keys = [k.decode() async for k in client.scan_iter(match="turn/*")]
        assert len(keys) == 3 and all(STATUS_KEY.fullmatch(k) for k in keys), keys
        for key in keys:
            value = (await client.get(key)).decode()
            assert value.startswith(("new lifetime=", "refreshed lifetime=")), value
            assert await client.ttl(key) == -1

        # Keys that are not allocation statuses are not counted, even those SCAN's glob
        # `turn/*/allocation/*/status` lets through.
        decoys = {
            f"turn/realm/{REALM}/user/{USER}/allocation/000000000000000042/traffic": "rcvp=1",
            f"turn/realm/{REALM}/user/{USER}/allocation/000000000000000042/total_traffic": "x",
            f"turn/realm/{REALM}/user/{USER}/allocation/000000000000000042/traffic/status": "x",
            f"turn/realm/{REALM}/user/{USER}/allocation/notanid/status": "new lifetime=600",
            f"turn/realm/{REALM}/user/{USER}/allocation/000000000000000042/status/old": "x",
            "cc:load:turn": "x",
        }
        await client.mset(decoys)  # type: ignore[arg-type]
        assert await count_turn_allocations(client) == 3
        assert await count_turn_allocations(client, scan_count=2) == 3  # many SCAN steps

        # Without a realm (e.g. --no-auth) coturn 4.6.1 writes "turn/user/<user>/...": counted.
        realmless = "turn/user/u/allocation/000000000000000099/status"
        await client.set(realmless, "new lifetime=600")
        assert await count_turn_allocations(client) == 4
        await client.delete(realmless)

        # Two more clients that send 30 packets 100 ms apart, then exit on their own.
        brief = coturn.uclient("brief", "-m", "2", "-n", "30", "-z", "100")
        await settles_at(client, 5, "3 held + 2 brief allocations open", coturn)
        assert await asyncio.to_thread(brief.wait, 30) == 0, tail(coturn.directory / "brief.log")
        await settles_at(client, 3, "brief clients finished", coturn)

        held.terminate()
        await asyncio.to_thread(held.wait, 10)
        await settles_at(client, 0, "held clients killed", coturn)
        assert await client.exists(*decoys) == len(decoys)  # still there, still not counted
    finally:
        for proc in (held, brief):
            if proc is not None:
                stop(proc)
        await client.aclose()


async def test_a_dead_relays_leftover_keys_are_pruned_by_idle_time(coturn: Coturn) -> None:
    """coturn deletes nothing when killed or stopped; live keys are rewritten at every
    refresh, so a key idle longer than the maximum allocation lifetime is a leftover."""
    client = aioredis.Redis.from_url(turn_db_url())
    held: subprocess.Popen[bytes] | None = None
    try:
        leftover = f"turn/realm/{REALM}/user/{USER}/allocation/000000000000000077/status"
        await client.set(leftover, "new lifetime=600")
        held = coturn.uclient("held", "-h", "-m", "2", "-n", "2")
        await settles_at(client, 3, "2 live allocations and 1 leftover", coturn)
        # Idle time has a resolution of one second: wait until the leftover is over 1 s
        # idle while the live keys are rewritten by the test (as a refresh would).
        deadline = time.monotonic() + 10
        while await client.exists(leftover):
            assert time.monotonic() < deadline, "the leftover key was never pruned"
            live = [k async for k in client.scan_iter(match="turn/*") if k.decode() != leftover]
            for key in live:
                await client.set(key, await client.get(key))  # what coturn's refresh does
            assert await count_turn_allocations(client, max_idle_seconds=1) in (2, 3)
            await asyncio.sleep(0.2)
        assert await count_turn_allocations(client, max_idle_seconds=1) == 2
    finally:
        if held is not None:
            stop(held)
        await client.aclose()
