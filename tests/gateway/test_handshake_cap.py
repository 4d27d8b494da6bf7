"""A gateway setting up `gateway.max_handshakes` streams sheds the next one at once, with a
retry hint, and admits new streams again as soon as a handshake ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2

from chatconnect.client import ChatError
from chatconnect.gateway.v1 import gateway_pb2
from chatconnect.gateway.v1 import gateway_service_pb2 as gw
from chatconnect.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from tests.conftest import Server
from tests.presence.helpers import PHONE, connected


async def _frames(requests: asyncio.Queue[gw.ConnectRequest]) -> AsyncIterator[gw.ConnectRequest]:
    while True:
        yield await requests.get()


async def _shed_while_the_slot_is_held(server: Server) -> ChatError:
    """Connects a second device until the gateway refuses it (the first stream may not
    have reached the gateway yet on the first tries)."""
    other = await server.register()
    for _ in range(100):
        try:
            async with connected(server, other, PHONE) as early:
                early.close()  # welcomed: the stalled stream had not reached the gateway yet
        except grpc.aio.AioRpcError as exc:
            return ChatError.from_rpc(exc)
        await asyncio.sleep(0.05)
    raise AssertionError("a second stream was never shed while the only slot was held")


@pytest.mark.settings(gateway={"max_handshakes": 1, "shed_retry_seconds": 3.0})
async def test_beyond_max_handshakes_a_stream_is_shed_with_a_hint_until_a_handshake_ends(
    any_server: Server,
) -> None:
    slow = await any_server.register()
    async with any_server.channel() as channel:
        # A stream that has not sent Hello yet holds the only handshake slot.
        requests: asyncio.Queue[gw.ConnectRequest] = asyncio.Queue()
        stalled = gw_grpc.GatewayServiceStub(channel).Connect(
            _frames(requests), metadata=slow.metadata()
        )
        try:
            error = await _shed_while_the_slot_is_held(any_server)
            assert error.code == grpc.StatusCode.UNAVAILABLE
            info = error.detail(error_details_pb2.ErrorInfo)
            assert info is not None
            assert (info.domain, info.reason) == ("gateway.chatconnect", "OVERLOADED")
            hint = error.detail(error_details_pb2.RetryInfo)
            assert hint is not None
            assert 3.0 <= hint.retry_delay.ToTimedelta().total_seconds() <= 6.0

            # Hello, then Welcome: the handshake is over and its slot is free again.
            requests.put_nowait(gw.ConnectRequest(hello=gateway_pb2.Hello(kind=PHONE)))
            first = await asyncio.wait_for(stalled.read(), 10)
            assert first.WhichOneof("frame") == "welcome"
            welcomed_while_open = await any_server.register()
            async with connected(any_server, welcomed_while_open, PHONE) as late:
                assert not late.call.done()
            assert not stalled.done()
        finally:
            stalled.cancel()
