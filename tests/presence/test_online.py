"""Online state end to end: per device with its kind, AWAY, going offline at once or when
a lease runs out; pushed to subscribers within about a second."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from chatconnect.bus.inprocess import _QueueSubscription
from chatconnect.model import DeviceAddress, DeviceKind
from chatconnect.presence.ports import Holder
from chatconnect.presence.redis import RedisPresenceStore
from chatconnect.presence.v1 import presence_service_pb2 as pb
from tests.conftest import Server

from .helpers import (
    AWAY,
    DESKTOP,
    OFFLINE,
    ONLINE,
    PHONE,
    WEB,
    connected,
    device_states,
    rid,
    stub,
    watching,
)

FAST = {"presence": {"device_heartbeat_seconds": 0.2, "min_update_interval": 0.2}}


@pytest.mark.settings(**FAST)
async def test_a_connected_device_is_pushed_online_with_its_kind(any_server: Server) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    async with watching(any_server, bob, [alice.user_id]) as watch:
        first = await watch.presence(alice.user_id, lambda _: True)
        assert first.state == OFFLINE and not first.devices
        async with connected(any_server, alice, PHONE):
            online = await watch.presence(alice.user_id, lambda u: u.state == ONLINE)
    assert device_states(online) == [(alice.device_id, PHONE, ONLINE)]
    assert not online.HasField("last_seen_time")  # empty while online


# Linking is rate limited per IP, and the test Redis is shared by many tests.
@pytest.mark.settings(**FAST, devices={"link_begins_per_minute": 600})
async def test_each_device_of_a_user_is_shown_with_its_kind(any_server: Server) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    desktop = await any_server.link(alice)
    async with (
        watching(any_server, bob, [alice.user_id]) as watch,
        connected(any_server, alice, PHONE),
        connected(any_server, desktop, DESKTOP),
    ):
        both = await watch.presence(alice.user_id, lambda u: len(u.devices) == 2)
    assert device_states(both) == [
        (alice.device_id, PHONE, ONLINE),
        (desktop.device_id, DESKTOP, ONLINE),
    ]


@pytest.mark.settings(**FAST)
async def test_update_presence_sets_away_and_back(any_server: Server) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    async with (
        watching(any_server, bob, [alice.user_id]) as watch,
        connected(any_server, alice, PHONE),
        any_server.channel() as channel,
    ):
        await watch.presence(alice.user_id, lambda u: u.state == ONLINE)
        before = time.time()
        request = pb.UpdatePresenceRequest(request_id=rid(), state=AWAY)
        response = await stub(channel).UpdatePresence(request, metadata=alice.metadata())
        assert (response.presence.device_id, response.presence.state) == (alice.device_id, AWAY)
        away = await watch.presence(alice.user_id, lambda u: u.state == AWAY)
        assert device_states(away) == [(alice.device_id, PHONE, AWAY)]
        # Away is not online: last seen shows when the user was last online.
        assert before - 1 <= away.last_seen_time.ToMicroseconds() / 1e6 <= time.time()
        back = pb.UpdatePresenceRequest(request_id=rid(), state=ONLINE)
        await stub(channel).UpdatePresence(back, metadata=alice.metadata())
        await watch.presence(
            alice.user_id, lambda u: u.state == ONLINE and u.devices[0].state == ONLINE
        )


@pytest.mark.settings(**FAST)
async def test_a_closed_stream_is_pushed_offline_at_once_with_last_seen(
    any_server: Server,
) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    async with watching(any_server, bob, [alice.user_id]) as watch:
        async with connected(any_server, alice, PHONE):
            await watch.presence(alice.user_id, lambda u: u.state == ONLINE)
        closed_at = time.time()
        # The default lease is 10 s: seeing it within 4 s (a loaded test machine included)
        # means the close itself counted.
        offline = await watch.presence(alice.user_id, lambda u: u.state == OFFLINE, timeout=4)
    seen = offline.last_seen_time.ToMicroseconds() / 1e6
    assert closed_at - 1 <= seen <= time.time()
    assert not offline.devices


@pytest.mark.settings(**FAST)
async def test_a_reset_during_the_gateways_teardown_still_goes_offline_at_once(
    any_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client that signs off closes its side, then resets the stream. Slowing the bus
    # unsubscribe makes the reset land while the gateway is still tearing the stream down.
    tearing_down = asyncio.Event()
    unsubscribe = _QueueSubscription.close

    async def slow_unsubscribe(self: _QueueSubscription) -> None:
        tearing_down.set()
        await asyncio.sleep(0.3)
        await unsubscribe(self)

    monkeypatch.setattr(_QueueSubscription, "close", slow_unsubscribe)
    alice, bob = await any_server.register(), await any_server.register()
    async with watching(any_server, bob, [alice.user_id]) as watch:
        async with connected(any_server, alice, PHONE) as stream:
            await watch.presence(alice.user_id, lambda u: u.state == ONLINE)
            stream.finish()
            await asyncio.wait_for(tearing_down.wait(), 5)
        # The lease is 10 s: offline within 4 s means the teardown finished.
        offline = await watch.presence(alice.user_id, lambda u: u.state == OFFLINE, timeout=4)
    assert not offline.devices


@pytest.mark.settings(
    presence={"device_heartbeat_seconds": 0.2, "min_update_interval": 0.2},
    gateway={"ping_interval_seconds": 0.5},
)
async def test_a_device_that_stops_pinging_goes_offline(any_server: Server) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    # Hello, then silence: the stream stays open, but the device no longer answers.
    async with (
        watching(any_server, bob, [alice.user_id]) as watch,
        connected(any_server, alice, PHONE),
    ):
        await watch.presence(alice.user_id, lambda u: u.state == ONLINE)
        silent_from = time.monotonic()
        await watch.presence(alice.user_id, lambda u: u.state == OFFLINE, timeout=5)
        assert time.monotonic() - silent_from < 4


@pytest.mark.settings(**FAST)
async def test_update_presence_of_a_device_without_a_stream_reports_offline(
    any_server: Server,
) -> None:
    alice = await any_server.register()
    async with any_server.channel() as channel:
        request = pb.UpdatePresenceRequest(request_id=rid(), state=AWAY)
        response = await stub(channel).UpdatePresence(request, metadata=alice.metadata())
    assert response.presence.state == OFFLINE


async def test_get_presence_answers_in_request_order(any_server: Server) -> None:
    alice, bob, carol = [await any_server.register() for _ in range(3)]
    async with connected(any_server, alice, PHONE), any_server.channel() as channel:
        request = pb.GetPresenceRequest(user_ids=[carol.user_id, alice.user_id])
        response = await stub(channel).GetPresence(request, metadata=bob.metadata())
    assert [(u.user_id, u.state) for u in response.presences] == [
        (carol.user_id, OFFLINE),
        (alice.user_id, ONLINE),
    ]


@pytest.mark.settings(presence={"device_heartbeat_seconds": 0.2, "device_lease_seconds": 1.0})
async def test_devices_of_a_crashed_process_go_offline_when_their_lease_runs_out(
    scylla_server: Server,
) -> None:
    # Distributed only: in the embedded mode one process holds every device, and its
    # presence dies with it. Here another process took alice's lease in the shared Redis
    # and then crashed: nobody renews it, nobody releases it.
    alice, bob = await scylla_server.register(), await scylla_server.register()
    client = aioredis.Redis.from_url(scylla_server.settings.server.redis_url)
    try:
        crashed = RedisPresenceStore(client)
        holder = Holder(DeviceAddress(alice.user_id, alice.device_id), "c-crashed", DeviceKind.WEB)
        await crashed.hold(holder, time.time(), ttl_seconds=1.0)
        async with watching(scylla_server, bob, [alice.user_id]) as watch:
            online = await watch.presence(alice.user_id, lambda _: True)
            assert device_states(online) == [(alice.device_id, WEB, ONLINE)]
            await watch.presence(alice.user_id, lambda u: u.state == OFFLINE, timeout=3)
    finally:
        await client.aclose()
