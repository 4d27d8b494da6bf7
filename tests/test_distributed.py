"""Several gateway processes on one machine, joined by the Redis bus.

Three `chatconnect serve` processes share one durable store (the embedded database in one
shared directory, or the test ScyllaDB keyspace) and one Redis. A device on
gateway 1 messages a device on gateway 3 through the bus; gateway 3 is killed with SIGKILL
mid-traffic, its device reconnects to another gateway, and nothing acknowledged is lost or
duplicated.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatconnect.cli import DEV_TEST_CODE
from chatconnect.client import ChatClient, register_account
from tests.conftest import fictional_number, send_through_a_failure
from tests.servers import redis_url, start_chatconnect, store_environment, wait_until_serving

SERVICES = ["gateway", "router", "users", "devices", "keys"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(index: int, port: int, data_dir: Path, store: dict[str, str]) -> subprocess.Popen[str]:
    env = {
        **store,
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CHATCONNECT_SERVER__BUS": "redis",
        "CHATCONNECT_SERVER__REDIS_URL": redis_url(),
        "CHATCONNECT_SERVER__INSTANCE_ID": f"gw{index}",
        "CHATCONNECT_USERS__TEST_NUMBERS_CODE": DEV_TEST_CODE,
        "CHATCONNECT_ROUTER__SENDS_PER_SECOND": "1000",
        "CHATCONNECT_SERVER__ROUTE_HEARTBEAT_SECONDS": "1",
    }
    return start_chatconnect(
        ["serve", *SERVICES], env, listen=f"127.0.0.1:{port}", data_dir=data_dir
    )


@pytest.fixture(params=["embedded", "scylla"])
def gateways(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[list[tuple[str, subprocess.Popen[str]]]]:
    """Three gateways on the store named by the param."""
    store = store_environment(request)
    started = []
    try:
        for index in (1, 2, 3):
            port = _free_port()
            # The shared directory also holds the token signing key all three use.
            process = _start(index, port, tmp_path / "shared", store)
            wait_until_serving(process)
            started.append((f"127.0.0.1:{port}", process))
        yield started
    finally:
        for _, process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for _, process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


async def test_device_on_gateway_one_reaches_device_on_gateway_three(gateways) -> None:
    (gw1, _), _, (gw3, _) = gateways
    alice = await register_account(gw1, fictional_number(), code=DEV_TEST_CODE)
    bob = await register_account(gw3, fictional_number(), code=DEV_TEST_CODE)
    async with ChatClient(gw1, alice) as a, ChatClient(gw3, bob) as b:
        await b.wait_drained()
        await a.send_text(bob.user_id, "across gateways")
        assert (await b.receive_message(timeout=5)).text == "across gateways"


async def test_gateway_killed_mid_traffic_loses_and_duplicates_nothing(gateways) -> None:
    (gw1, _), (gw2, _), (gw3, gw3_process) = gateways
    alice = await register_account(gw1, fictional_number(), code=DEV_TEST_CODE)
    bob = await register_account(gw3, fictional_number(), code=DEV_TEST_CODE)
    # Bob's client knows two gateways: it talks to gateway 3 and fails over to gateway 2.
    failover_target = f"ipv4:{gw3},{gw2}"
    total = 60
    async with ChatClient(gw1, alice) as a, ChatClient(failover_target, bob) as b:
        await b.wait_drained()

        def kill_gateway_3() -> None:
            gw3_process.send_signal(signal.SIGKILL)
            gw3_process.wait(timeout=10)

        await send_through_a_failure(
            a, b, bob.user_id, total=total, fail_at=total // 3, fail=kill_gateway_3
        )
        assert b.connections >= 2
