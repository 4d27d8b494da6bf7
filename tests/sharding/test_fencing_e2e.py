"""Epoch fencing seen from clients, through real gRPC against a running server.

The operator publishes the shard map as a file; after a failover it raises the epoch. A
send routed by the old map must be refused (and stored nowhere); the SDK adopts the epoch
the refusal names and its message then arrives exactly once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis

from chatconnect.client import Account, ChatError
from chatconnect.common.v1 import common_pb2
from chatconnect.errordetails.v1 import errordetails_pb2
from chatconnect.router.v1 import router_pb2
from chatconnect.router.v1 import router_service_pb2 as router_pb
from chatconnect.router.v1 import router_service_pb2_grpc as router_grpc
from chatconnect.runtime.load_reports import GATEWAY, read_load
from chatconnect.storage.cql_config import ScyllaConfig
from tests.conftest import Server, distributed_overrides, running_server
from tests.servers import redis_url
from tests.sharding.test_fence import write_map

Code = grpc.StatusCode
REGIONS = ("eu-west",) * 8 + ("us-east",) * 8


@pytest.fixture
def map_file(tmp_path: Path) -> Path:
    path = tmp_path / "shard-map" / "shard-map.json"
    path.parent.mkdir()
    write_map(path, 3, REGIONS)
    return path


@pytest.fixture
async def fenced_server(tmp_path: Path, map_file: Path) -> AsyncIterator[Server]:
    sharding = {"sharding": {"map_file": str(map_file), "region": "eu-west",
                             "reload_seconds": 0.2}}
    async with running_server(tmp_path / "data", sharding) as running:
        yield running


def _outgoing(to: Account, epoch: int) -> router_pb2.OutgoingMessage:
    return router_pb2.OutgoingMessage(
        client_message_id=uuid.uuid4().hex,
        destination=common_pb2.ConversationRef(user_id=to.user_id),
        ciphertexts=[router_pb2.DeviceCiphertext(
            device=common_pb2.DeviceAddress(user_id=to.user_id, device_id=to.device_id),
            registration_id=to.keys.registration_id,
            type=common_pb2.ENVELOPE_TYPE_CIPHERTEXT,
            content=b"sealed elsewhere",
        )],
        shard_epoch=epoch,
    )


async def _unary_send(server: Server, sender: Account,
                      message: router_pb2.OutgoingMessage) -> router_pb2.SendResult:
    async with server.channel() as channel:
        response = await router_grpc.RouterServiceStub(channel).SendMessage(
            router_pb.SendMessageRequest(message=message), metadata=sender.metadata())
    return response.result


async def _inbox(server: Server, account: Account) -> list[common_pb2.InboxItem]:
    async with server.channel() as channel:
        response = await router_grpc.RouterServiceStub(channel).ListInboxItems(
            router_pb.ListInboxItemsRequest(page_size=500), metadata=account.metadata())
    return list(response.items)


async def test_welcome_tells_the_epoch_and_a_stale_send_stores_nothing(
    fenced_server: Server,
) -> None:
    alice, bob = await fenced_server.register(), await fenced_server.register()
    async with fenced_server.client(alice) as client:
        assert client.shard_epoch == 3
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _unary_send(fenced_server, alice, _outgoing(bob, epoch=2))
    error = ChatError.from_rpc(raised.value)
    assert (error.code, error.reason) == (Code.FAILED_PRECONDITION, "STALE_SHARD_EPOCH")
    stale = error.detail(errordetails_pb2.StaleShardEpoch)
    assert (stale.request_epoch, stale.current_epoch) == (2, 3)
    assert await _inbox(fenced_server, bob) == []
    # The current epoch, and 0 (a client without a map), are accepted.
    for epoch in (3, 0):
        result = await _unary_send(fenced_server, alice, _outgoing(bob, epoch))
        assert result.server_message_id
    assert len(await _inbox(fenced_server, bob)) == 2


async def test_a_send_from_a_newer_epoch_waits_for_the_map(
    fenced_server: Server, map_file: Path
) -> None:
    alice, bob = await fenced_server.register(), await fenced_server.register()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _unary_send(fenced_server, alice, _outgoing(bob, epoch=4))
    error = ChatError.from_rpc(raised.value)
    assert (error.code, error.reason) == (Code.UNAVAILABLE, "SHARD_MAP_BEHIND")
    assert error.detail(errordetails_pb2.StaleShardEpoch) is None
    write_map(map_file, 4, REGIONS)
    result = await _unary_send(fenced_server, alice, _outgoing(bob, epoch=4))
    assert result.server_message_id
    assert [item.envelope.server_message_id for item in await _inbox(fenced_server, bob)] == [
        result.server_message_id
    ]


async def test_after_a_failover_the_sdk_adopts_the_epoch_and_delivers_once(
    fenced_server: Server, map_file: Path
) -> None:
    alice, bob = await fenced_server.register(), await fenced_server.register()
    async with fenced_server.client(alice) as sender, fenced_server.client(bob) as receiver:
        await sender.send_text(bob.user_id, "before")
        assert (await receiver.receive_message()).plaintext == b"before"
        failed_over = tuple("us-east" for _ in REGIONS)  # eu-west's shards moved
        write_map(map_file, 4, failed_over)
        await asyncio.sleep(0.5)  # the server re-reads the file every 0.2 s
        assert sender.shard_epoch == 3  # the connected client still routes by epoch 3
        result = await sender.send_text(bob.user_id, "after")
        assert sender.shard_epoch == 4
        received = await receiver.receive_message()
        assert (received.plaintext, received.envelope.server_message_id) == (
            b"after", result.server_message_id)
        with pytest.raises(TimeoutError):
            await receiver.receive(timeout=0.5)  # delivered once, not once per attempt


async def test_a_gateway_reports_its_connections_for_the_autoscaler(
    tmp_path: Path, scylla_keyspace: ScyllaConfig
) -> None:
    namespace_db = redis_url().rsplit("/", 1)[0] + "/3"
    distributed = distributed_overrides(scylla_keyspace, namespace_db)
    distributed["server"].update(route_heartbeat_seconds=0.2, instance_id="gw-report-test")
    redis = aioredis.Redis.from_url(namespace_db)
    try:
        async with running_server(tmp_path / "data", distributed) as server:
            accounts = [await server.register() for _ in range(3)]
            clients = [server.client(account) for account in accounts]
            for client in clients:
                await client.connect()
            try:
                await _until_load(redis, 3)
            finally:
                for client in clients:
                    await client.close()
            await _until_load(redis, 0)
        # A clean shutdown withdraws the report instead of leaving it to go stale.
        assert await redis.hget("cc:load:gateway", "gw-report-test") is None
    finally:
        await redis.aclose()


async def _until_load(redis: aioredis.Redis, connections: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        figure = await read_load(redis, component=GATEWAY,
                                 now_ms=int(time.time() * 1000), max_age_ms=5_000)
        if figure.total == connections and figure.reporters == 1:
            return
        assert time.monotonic() < deadline, f"load stayed {figure}, expected {connections}"
        await asyncio.sleep(0.1)
