"""Store faults in the distributed mode, against the real servers.

* Redis restarted empty: routes come back from the gateways' heartbeats, inbox sequences
  keep increasing (they are never reused), and nothing acknowledged is lost.
* Cassandra stopped while clients send: sends fail fast with UNAVAILABLE and a retry hint,
  nothing that was not written is acknowledged, and after the restart the clients' retries
  succeed and are deduplicated.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
from google.rpc import error_details_pb2

from chatconnect.client import Account, ChatClient
from chatconnect.client.errors import ChatError
from chatconnect.client.session import Received
from chatconnect.common.v1 import common_pb2
from chatconnect.router.v1 import router_pb2
from chatconnect.router.v1 import router_service_pb2 as router_pb
from chatconnect.router.v1 import router_service_pb2_grpc as router_grpc
from chatconnect.storage.cql_config import ScyllaConfig
from tests.conftest import Server, distributed_overrides, running_server
from tests.polling import eventually
from tests.servers import private_redis, redis_url, run_testenv

FAST_ROUTES = {"server": {"route_heartbeat_seconds": 0.5, "route_ttl_seconds": 5.0}}


async def _receive(client: ChatClient, count: int, timeout: float = 30.0) -> list[Received]:
    return [await client.receive_message(timeout=timeout) for _ in range(count)]


async def _nothing_more(client: ChatClient) -> None:
    with pytest.raises(TimeoutError):
        await client.receive_message(timeout=0.5)


async def test_redis_restarted_empty_loses_nothing_and_never_reuses_a_sequence(
    tmp_path: Path, scylla_keyspace: ScyllaConfig
) -> None:
    with private_redis(tmp_path / "redis") as redis:
        distributed = distributed_overrides(scylla_keyspace, redis.url)
        async with running_server(tmp_path / "data", distributed, FAST_ROUTES) as server:
            alice, bob = await server.register(), await server.register()
            async with server.client(alice) as a, server.client(bob) as b:
                await b.wait_drained()
                for i in range(10):
                    await a.send_text(bob.user_id, f"before {i}")
                before = await _receive(b, 10)

                redis.kill()
                redis.start()
                inspector = aioredis.Redis.from_url(redis.url)
                try:
                    assert await inspector.dbsize() == 0  # everything ephemeral is gone
                    for i in range(10):
                        await asyncio.wait_for(a.send_text(bob.user_id, f"after {i}"), 30)
                    after = await _receive(b, 10)

                    # The gateway's next heartbeat writes Bob's route again. The messages
                    # above may arrive before it does: a lost route makes the gateway
                    # re-read the inbox, so the route's return is waited for, not assumed.
                    async def bobs_routes() -> list[bytes]:
                        pattern = f"cc:route:{{{bob.user_id}}}:*"
                        return [key async for key in inspector.scan_iter(pattern)]

                    await eventually(bobs_routes, "Bob's route written again", timeout=10)
                finally:
                    await inspector.aclose()
                await _nothing_more(b)

    assert [r.text for r in before + after] == [f"before {i}" for i in range(10)] + [
        f"after {i}" for i in range(10)
    ]
    sequences = [r.envelope.sequence for r in before + after if r.envelope is not None]
    assert len(sequences) == 20
    assert sequences == sorted(set(sequences))  # strictly increasing: none reused
    assert min(sequences[10:]) > max(sequences[:10])


async def _unary_send_status(
    server: Server, sender: Account, to_user_id: str
) -> tuple[grpc.StatusCode, ChatError, float]:
    """Sends over the unary RPC and returns how it failed and how long that took."""
    async with server.channel() as channel:
        stub = router_grpc.RouterServiceStub(channel)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stub.SendMessage(
                router_pb.SendMessageRequest(
                    message=router_pb2.OutgoingMessage(
                        client_message_id="while-down",
                        destination=common_pb2.ConversationRef(user_id=to_user_id),
                        ciphertexts=[
                            router_pb2.DeviceCiphertext(
                                device=common_pb2.DeviceAddress(user_id=to_user_id, device_id=1),
                                registration_id=1,
                                type=common_pb2.ENVELOPE_TYPE_CIPHERTEXT,
                                content=b"sealed",
                            )
                        ],
                    )
                ),
                metadata=sender.metadata(),
                timeout=30,
            )
        took = time.monotonic() - started
    error = ChatError.from_rpc(failure.value)
    return failure.value.code(), error, took


async def test_cassandra_stopped_while_sending_acknowledges_nothing_unwritten(
    tmp_path: Path, scylla_keyspace: ScyllaConfig
) -> None:
    distributed = distributed_overrides(scylla_keyspace, redis_url())
    async with running_server(tmp_path / "data", distributed, FAST_ROUTES) as server:
        alice, bob = await server.register(), await server.register()
        async with server.client(alice) as a, server.client(bob) as b:
            await b.wait_drained()
            await a.send_text(bob.user_id, "warm-up")  # Alice now knows Bob's devices
            [warm_up] = await _receive(b, 1)

            run_testenv("down", "cassandra", "--kill")
            try:
                code, error, took = await _unary_send_status(server, alice, bob.user_id)
                assert code == grpc.StatusCode.UNAVAILABLE
                assert error.reason == "STORE_UNAVAILABLE"
                hint = error.detail(error_details_pb2.RetryInfo)
                assert hint is not None and hint.retry_delay.ToTimedelta().total_seconds() > 0
                assert took < server.settings.server.store_timeout_seconds + 1

                # The sends wait out the restart (up to about 40 s on a loaded machine).
                sends = [
                    asyncio.create_task(a.send_text(bob.user_id, f"during {i}", timeout=180))
                    for i in range(5)
                ]
                done, _ = await asyncio.wait(sends, timeout=3)
                assert not done  # nothing is acknowledged while it cannot be written
            finally:
                run_testenv("up", "cassandra")

            results = await asyncio.wait_for(asyncio.gather(*sends), 60)
            received = await _receive(b, 5, timeout=60)
            await _nothing_more(b)

            # A retry of an acknowledged send is recognised, not stored again.
            again = await a.send_text(
                bob.user_id, "during 0", client_message_id=results[0].client_message_id
            )
            assert again.server_message_id == results[0].server_message_id
            await _nothing_more(b)

    assert warm_up.text == "warm-up"
    assert sorted(r.text for r in received) == [f"during {i}" for i in range(5)]
    assert len({r.server_message_id for r in results}) == 5
    assert {r.envelope.server_message_id for r in received if r.envelope} == {
        r.server_message_id for r in results
    }
