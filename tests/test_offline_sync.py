"""Offline sync: a device with a large backlog drains it page by page, with bounded memory."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from chatconnect.common.v1 import common_pb2
from chatconnect.gateway.v1 import gateway_pb2
from chatconnect.gateway.v1 import gateway_service_pb2 as gw
from chatconnect.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from chatconnect.router.v1 import router_service_pb2 as router_pb
from chatconnect.router.v1 import router_service_pb2_grpc as router_grpc

from .conftest import Server

BACKLOG = 10_000


async def _fill_backlog(server: Server, clients, count: int):
    """Registers Alice and Bob; Alice sends `count` messages to Bob, who is offline."""
    alice, bob = await server.register(), await server.register()
    a = await clients(alice)
    sem = asyncio.Semaphore(64)
    texts = [f"m{i:05d}" for i in range(count)]

    async def send(text: str) -> None:
        async with sem:
            await a.send_text(bob.user_id, text)

    # One stream keeps one sender's order; concurrency here only overlaps round trips.
    for start in range(0, count, 500):
        await asyncio.gather(*(send(t) for t in texts[start : start + 500]))
    return alice, bob


@pytest.mark.slow
@pytest.mark.settings(router={"sends_per_second": 100_000.0, "send_burst": 100_000})
async def test_ten_thousand_waiting_messages_arrive_in_pages(server: Server, clients) -> None:
    _alice, bob = await _fill_backlog(server, clients, BACKLOG)

    # Unary paging: default page 100, a larger request is capped at 500.
    async with server.channel() as channel:
        stub = router_grpc.RouterServiceStub(channel)
        first = await stub.ListInboxItems(
            router_pb.ListInboxItemsRequest(), metadata=bob.metadata()
        )
        assert len(first.items) == 100 and first.next_page_token
        big = await stub.ListInboxItems(
            router_pb.ListInboxItemsRequest(page_size=5_000), metadata=bob.metadata()
        )
        assert len(big.items) == 500
        seen: list[int] = []
        token = ""
        while True:
            page = await stub.ListInboxItems(
                router_pb.ListInboxItemsRequest(page_size=500, page_token=token),
                metadata=bob.metadata(),
            )
            seen.extend(i.envelope.sequence for i in page.items)
            token = page.next_page_token
            if not token:
                break
    assert len(seen) == BACKLOG
    assert seen == sorted(seen) and len(set(seen)) == BACKLOG

    # The stream: every message exactly once, in order, through a window of 100.
    b = await clients(bob, window=100)
    texts = [(await b.receive_message(timeout=30)).text for _ in range(BACKLOG)]
    assert texts == [f"m{i:05d}" for i in range(BACKLOG)]
    await b.wait_drained()
    with pytest.raises(TimeoutError):
        await b.receive_message(timeout=0.3)


@pytest.mark.settings(router={"sends_per_second": 100_000.0, "send_burst": 100_000})
async def test_server_never_has_more_than_the_window_unacknowledged(
    server: Server, clients
) -> None:
    _alice, bob = await _fill_backlog(server, clients, 300)
    async with server.channel() as channel:
        call = gw_grpc.GatewayServiceStub(channel).Connect(metadata=bob.metadata())
        await call.write(
            gw.ConnectRequest(
                hello=gateway_pb2.Hello(kind=common_pb2.DEVICE_KIND_PHONE, delivery_window=40)
            )
        )
        frames: asyncio.Queue[gw.ConnectResponse] = asyncio.Queue()

        async def read_all() -> None:
            # A cancelled read() breaks a gRPC call, so one task reads and the test waits
            # on the queue instead.
            while (frame := await call.read()) is not grpc.aio.EOF:
                frames.put_nowait(frame)

        reader = asyncio.create_task(read_all())
        welcome = await asyncio.wait_for(frames.get(), 5)
        assert welcome.welcome.delivery_window == 40
        received = [(await asyncio.wait_for(frames.get(), 5)).envelope for _ in range(40)]
        # The window is full: nothing more comes until something is acknowledged.
        await asyncio.sleep(0.5)
        assert frames.empty()
        await call.write(
            gw.ConnectRequest(ack=gateway_pb2.Ack(ids=[e.server_message_id for e in received[:10]]))
        )
        more = [(await asyncio.wait_for(frames.get(), 5)).envelope for _ in range(10)]
        assert [e.sequence for e in more] == list(range(41, 51))
        await asyncio.sleep(0.5)
        assert frames.empty()
        reader.cancel()
        call.cancel()
