"""Retention: envelopes expire, and a device that comes back later is told what it missed."""

from __future__ import annotations

import asyncio

import pytest

from chatconnect.router.v1 import router_service_pb2 as router_pb
from chatconnect.router.v1 import router_service_pb2_grpc as router_grpc

from .conftest import Server


@pytest.mark.settings(router={"retention_seconds": 1})
async def test_device_back_after_expiry_gets_a_gap_marker_not_silence(
    server: Server, clients
) -> None:
    alice, bob = await server.register(), await server.register()
    a = await clients(alice)
    for i in range(3):
        await a.send_text(bob.user_id, f"lost {i}")
    await asyncio.sleep(1.3)
    await a.send_text(bob.user_id, "fresh")
    b = await clients(bob)
    gap = (await b.receive()).gap
    assert gap is not None
    assert (gap.first_sequence, gap.last_sequence) == (1, 3)
    assert (await b.receive_message()).text == "fresh"
    # The gap was acknowledged: a later connection is not told again.
    await asyncio.sleep(0.1)
    await b.drop_connection()
    await b.connect()
    await b.wait_drained()
    with pytest.raises(TimeoutError):
        await b.receive(timeout=0.3)


@pytest.mark.settings(router={"retention_seconds": 1, "expiry_sweep_seconds": 0.2})
async def test_sweeper_turns_expired_envelopes_into_gaps_listed_by_unary_sync(
    server: Server, clients
) -> None:
    alice, bob = await server.register(), await server.register()
    a = await clients(alice)
    for i in range(5):
        await a.send_text(bob.user_id, f"lost {i}")
    await asyncio.sleep(1.6)  # past retention and at least one sweep
    async with server.channel() as channel:
        stub = router_grpc.RouterServiceStub(channel)
        page = await stub.ListInboxItems(router_pb.ListInboxItemsRequest(), metadata=bob.metadata())
        assert [i.WhichOneof("item") for i in page.items] == ["gap"]
        gap = page.items[0].gap
        assert (gap.first_sequence, gap.last_sequence) == (1, 5)
        await stub.AcknowledgeInboxItems(
            router_pb.AcknowledgeInboxItemsRequest(ids=[gap.gap_id]), metadata=bob.metadata()
        )
        page = await stub.ListInboxItems(router_pb.ListInboxItemsRequest(), metadata=bob.metadata())
        assert list(page.items) == []
