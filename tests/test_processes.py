"""Several server processes on one port (`server.processes`), as an operator runs them.

`chatconnect up` with two processes on each store: devices spread over both processes
still reach each other; a process killed mid-traffic is started again and nothing
acknowledged is lost; the processes never outlive their supervisor; a process that cannot
start makes the command fail with its reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from chatconnect.bus.redis import route_key
from chatconnect.cli import DEV_TEST_CODE
from chatconnect.client import ChatClient, register_account
from chatconnect.model import DeviceAddress
from tests.conftest import fictional_number, send_through_a_failure
from tests.servers import redis_url, start_chatconnect, store_environment, wait_until_serving

PROCESSES = 2


@dataclass
class Supervised:
    """A running `chatconnect up` with several processes, and its output so far."""

    process: subprocess.Popen[str]
    address: str
    output: list[str] = field(default_factory=list)

    def server_pids(self) -> set[int]:
        """The pids of the server processes (not multiprocessing's resource tracker)."""
        return _server_children(self.process.pid)

    def wait_for_pids(self, predicate: object, *, timeout: float = 30) -> set[int]:
        deadline = time.monotonic() + timeout
        pids = self.server_pids()
        while time.monotonic() < deadline:
            pids = self.server_pids()
            if callable(predicate) and predicate(pids):
                return pids
            time.sleep(0.1)
        raise AssertionError(f"server processes are {pids}; output:\n{''.join(self.output[-40:])}")


def _server_children(pid: int) -> set[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return set()
    servers = set()
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in command:
            servers.add(child)
    return servers


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _environment(store: dict[str, str], redis: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        **store,
        "PYTHONUNBUFFERED": "1",
        "CHATCONNECT_SERVER__BUS": "redis",
        "CHATCONNECT_SERVER__REDIS_URL": redis,
        "CHATCONNECT_SERVER__PROCESSES": str(PROCESSES),
        "CHATCONNECT_SERVER__INSTANCE_ID": f"mp{tmp_path.name[-6:]}",
        "CHATCONNECT_SERVER__DRAIN_SECONDS": "1",
        "CHATCONNECT_SERVER__ROUTE_HEARTBEAT_SECONDS": "1",
        "CHATCONNECT_ROUTER__SENDS_PER_SECOND": "1000",
    }


def _up(environment: dict[str, str], data_dir: Path) -> subprocess.Popen[str]:
    return start_chatconnect(["up"], environment, listen="127.0.0.1:0", data_dir=data_dir)


@pytest.fixture(params=["embedded", "scylla"])
def supervised(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Supervised]:
    """`chatconnect up` with two processes on the store named by the param, port 0."""
    environment = _environment(store_environment(request), redis_url(), tmp_path)
    process = _up(environment, tmp_path / "data")
    running = Supervised(process, wait_until_serving(process))

    def keep_reading() -> None:
        # The pipe must never fill, and the tests read what the supervisor logged.
        assert process.stdout is not None
        for line in process.stdout:
            running.output.append(line)

    reader = threading.Thread(target=keep_reading, daemon=True)
    reader.start()
    try:
        yield running
    finally:
        children = running.server_pids()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        for child in children:
            if _alive(child):
                os.kill(child, signal.SIGKILL)
        reader.join(timeout=5)


async def test_devices_on_both_processes_reach_each_other(supervised: Supervised) -> None:
    # Each client opens its own TCP connection, and the kernel spreads connections over
    # the processes; with 16 devices all landing on one process is a 1-in-32,768 chance.
    accounts = [
        await register_account(supervised.address, fictional_number(), code=DEV_TEST_CODE)
        for _ in range(16)
    ]
    clients = [ChatClient(supervised.address, account) for account in accounts]
    try:
        for client in clients:
            await client.connect()
            await client.wait_drained()
        routes = redis.Redis.from_url(redis_url())
        holders = {
            routes.get(route_key("cc", DeviceAddress(a.user_id, a.device_id))) for a in accounts
        }
        routes.close()
        assert None not in holders
        assert len(holders) == PROCESSES, holders
        for i, client in enumerate(clients):
            await client.send_text(accounts[(i + 1) % len(accounts)].user_id, f"from {i}")
        for i, client in enumerate(clients):
            received = await client.receive_message(timeout=10)
            assert received.text == f"from {(i - 1) % len(accounts)}"
    finally:
        for client in clients:
            await client.close()


async def test_a_killed_process_is_restarted_and_nothing_acknowledged_is_lost(
    supervised: Supervised,
) -> None:
    first = supervised.wait_for_pids(lambda pids: len(pids) == PROCESSES)
    alice = await register_account(supervised.address, fictional_number(), code=DEV_TEST_CODE)
    bob = await register_account(supervised.address, fictional_number(), code=DEV_TEST_CODE)
    total = 40
    async with (
        ChatClient(supervised.address, alice) as a,
        ChatClient(supervised.address, bob) as b,
    ):
        await b.wait_drained()
        victim = sorted(first)[0]
        await send_through_a_failure(
            a,
            b,
            bob.user_id,
            total=total,
            fail_at=total // 2,
            fail=lambda: os.kill(victim, signal.SIGKILL),
        )
    restarted = supervised.wait_for_pids(lambda pids: len(pids) == PROCESSES and victim not in pids)
    assert restarted - first, "a new process took the killed one's place"
    assert any("server process died; starting it again" in line for line in supervised.output)
    # The restarted process serves: a new device connects and gets a message.
    carol = await register_account(supervised.address, fictional_number(), code=DEV_TEST_CODE)
    async with ChatClient(supervised.address, carol) as c:
        await c.wait_drained()
        async with ChatClient(supervised.address, alice) as a:
            await a.send_text(carol.user_id, "after the restart")
            assert (await c.receive_message(timeout=10)).text == "after the restart"


def test_sigterm_drains_every_process_and_exits_cleanly(supervised: Supervised) -> None:
    pids = supervised.wait_for_pids(lambda pids: len(pids) == PROCESSES)
    supervised.process.send_signal(signal.SIGTERM)
    assert supervised.process.wait(timeout=30) == 0
    assert not any(_alive(pid) for pid in pids)
    output = "".join(supervised.output)
    assert output.count("draining") == PROCESSES
    assert "server process died" not in output


def test_server_processes_never_outlive_a_killed_supervisor(supervised: Supervised) -> None:
    pids = supervised.wait_for_pids(lambda pids: len(pids) == PROCESSES)
    supervised.process.send_signal(signal.SIGKILL)
    supervised.process.wait(timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), "an orphaned server process kept the port"
    output = "".join(supervised.output)
    assert output.count("the supervisor is gone; stopping") == PROCESSES, output
    # The processes share one stderr: each log line is written whole, never interleaved.
    for line in output.splitlines():
        assert line.count("Z [") <= 1, f"log lines interleaved: {line!r}"


def test_a_process_that_cannot_start_fails_the_command_with_its_reason(tmp_path: Path) -> None:
    # Nothing listens on port 1: every process fails to reach Redis.
    environment = _environment({}, "redis://127.0.0.1:1/0", tmp_path)
    process = _up(environment, tmp_path / "data")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in output
    assert "before it was ready" in output
    assert "clients connect to" not in output
