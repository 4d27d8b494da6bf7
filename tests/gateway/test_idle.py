"""Streams that stop talking are closed by the gateway, and only those."""

from __future__ import annotations

import asyncio

import pytest

from chatconnect.gateway.v1 import gateway_pb2
from chatconnect.gateway.v1 import gateway_service_pb2 as gw
from tests.conftest import Server
from tests.presence.helpers import PHONE, connected


@pytest.mark.settings(gateway={"ping_interval_seconds": 0.2})
async def test_a_silent_stream_gets_go_away_idle_while_a_pinging_one_stays(
    any_server: Server,
) -> None:
    silent, pinging = await any_server.register(), await any_server.register()
    async with (
        connected(any_server, silent, PHONE) as quiet,
        connected(any_server, pinging, PHONE) as chatty,
    ):

        async def keep_pinging() -> None:
            while True:
                chatty._requests.put_nowait(gw.ConnectRequest(ping=gateway_pb2.Ping()))
                await asyncio.sleep(0.05)

        pinger = asyncio.create_task(keep_pinging())
        try:
            frame = await asyncio.wait_for(quiet.call.read(), 5)
            while frame.WhichOneof("frame") != "go_away":
                frame = await asyncio.wait_for(quiet.call.read(), 5)
            assert frame.go_away.reason == "IDLE"
            # Two ping intervals and more have passed: the pinging stream is still open.
            assert not chatty.call.done()
        finally:
            pinger.cancel()
