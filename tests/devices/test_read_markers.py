"""Read markers end to end, on both stores: they only move forward, every device of the
account lists the same ones (so computes the same unread count), and the other devices are
told without polling, online by push and offline from their inbox."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2

from chatconnect.common.v1 import common_pb2
from chatconnect.devices.v1 import devices_pb2
from chatconnect.devices.v1 import devices_service_pb2 as pb
from chatconnect.errordetails.v1 import errordetails_pb2
from chatconnect.router.v1 import router_pb2
from tests.conftest import Server
from tests.devices.rpc import (
    LINKS_UNLIMITED,
    MARKERS_CHANGED,
    Code,
    fails,
    list_markers,
    marker_for,
    next_notice,
    no_notice,
    notices_in_inbox,
    stub,
    update_markers,
    with_user,
)

pytestmark = pytest.mark.settings(devices=LINKS_UNLIMITED)


def _position(stamp: timestamp_pb2.Timestamp, message_id: str) -> tuple[int, int, str]:
    return (stamp.seconds, stamp.nanos, message_id)


def _unread(received: list[common_pb2.Envelope], marker: devices_pb2.ReadMarker) -> int:
    """Messages after the marker: what a device shows as unread."""
    read_through = _position(marker.read_through_time, marker.read_through_server_message_id)
    return sum(1 for e in received if _position(e.server_time, e.server_message_id) > read_through)


async def test_markers_only_move_forward_and_every_device_sees_the_same(
    any_server: Server, connect
) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    laptop = await any_server.link(alice)
    phone_client, laptop_client = await connect(alice), await connect(laptop)
    b = await connect(bob)
    sent = [await b.send_text(alice.user_id, f"message {i}") for i in range(3)]
    received = {}
    for client in (phone_client, laptop_client):
        received[client] = [(await client.receive_message()).envelope for _ in sent]
    conversation = with_user(bob.user_id)

    # The phone reads up to the second message; the laptop, behind, reports the first.
    assert await update_markers(any_server, alice, [marker_for(conversation, sent[1])]) == [
        marker_for(conversation, sent[1])
    ]
    stale = await update_markers(any_server, laptop, [marker_for(conversation, sent[0])])
    assert stale == [marker_for(conversation, sent[1])], "a stale marker moved the marker back"

    for device in (alice, laptop):
        assert await list_markers(any_server, device) == [marker_for(conversation, sent[1])]
    (marker,) = await list_markers(any_server, alice)
    assert [_unread(received[c], marker) for c in (phone_client, laptop_client)] == [1, 1]

    # Bob's account has markers of its own: none.
    assert await list_markers(any_server, bob) == []


async def test_concurrent_updates_from_two_devices_keep_the_furthest(
    any_server: Server, connect
) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    laptop = await any_server.link(alice)
    b = await connect(bob)
    sent = [await b.send_text(alice.user_id, f"m{i}") for i in range(6)]
    conversation = with_user(bob.user_id)
    await asyncio.gather(
        *(
            update_markers(any_server, device, [marker_for(conversation, message)])
            for message in reversed(sent)
            for device in (alice, laptop)
        )
    )
    for device in (alice, laptop):
        assert await list_markers(any_server, device) == [marker_for(conversation, sent[-1])]


async def test_the_other_devices_are_told_online_and_offline(any_server: Server, connect) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    laptop = await any_server.link(alice)
    tablet = await any_server.link(alice)  # stays offline
    phone_client, laptop_client = await connect(alice), await connect(laptop)
    sent = await (await connect(bob)).send_text(alice.user_id, "hi")
    await update_markers(any_server, alice, [marker_for(with_user(bob.user_id), sent)])

    await next_notice(laptop_client, MARKERS_CHANGED)
    await no_notice(phone_client, MARKERS_CHANGED)  # the device that moved it knows
    assert await notices_in_inbox(any_server, tablet, MARKERS_CHANGED) == 1
    # The notice says where to look: the tablet lists the marker the phone set.
    assert await list_markers(any_server, tablet) == [marker_for(with_user(bob.user_id), sent)]

    # A stale update moves nothing and tells nobody.
    older = router_pb2.SendResult(
        server_message_id=sent.server_message_id[:-1] + "0", server_time=sent.server_time
    )
    older.server_time.seconds -= 60
    await update_markers(any_server, laptop, [marker_for(with_user(bob.user_id), older)])
    await no_notice(phone_client, MARKERS_CHANGED)
    assert await notices_in_inbox(any_server, tablet, MARKERS_CHANGED) == 1


async def test_a_repeated_update_changes_nothing(any_server: Server, connect) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    sent = await (await connect(bob)).send_text(alice.user_id, "hi")
    request_id = uuid.uuid4().hex
    marker = marker_for(with_user(bob.user_id), sent)
    first = await update_markers(any_server, alice, [marker], request_id=request_id)
    again = await update_markers(any_server, alice, [marker], request_id=request_id)
    assert first == again == [marker]
    assert await list_markers(any_server, alice) == [marker]


async def test_markers_are_listed_in_pages(any_server: Server) -> None:
    alice = await any_server.register()
    now = time.time()
    markers = [
        devices_pb2.ReadMarker(
            conversation=with_user(str(uuid.uuid4())),
            read_through_time=timestamp_pb2.Timestamp(seconds=int(now) - i),
            read_through_server_message_id=uuid.uuid4().hex,
        )
        for i in range(7)
    ]
    markers.append(
        devices_pb2.ReadMarker(
            conversation=common_pb2.ConversationRef(group_id=str(uuid.uuid4())),
            read_through_time=timestamp_pb2.Timestamp(seconds=int(now)),
            read_through_server_message_id=uuid.uuid4().hex,
        )
    )
    await update_markers(any_server, alice, markers)
    async with any_server.channel() as channel:
        first = await stub(channel).ListReadMarkers(
            pb.ListReadMarkersRequest(page_size=3), metadata=alice.metadata()
        )
    assert len(first.markers) == 3 and first.next_page_token
    listed = await list_markers(any_server, alice)  # pages of 2
    assert len(listed) == len(markers)
    key = lambda m: m.SerializeToString(deterministic=True)  # noqa: E731
    assert sorted(map(key, listed)) == sorted(map(key, markers))


def _marker(**fields: object) -> devices_pb2.ReadMarker:
    """A good marker, with `fields` replaced (None leaves a field unset)."""
    values: dict[str, object] = {
        "conversation": with_user(str(uuid.uuid4())),
        "read_through_time": timestamp_pb2.Timestamp(seconds=int(time.time())),
        "read_through_server_message_id": uuid.uuid4().hex,
    }
    values.update(fields)
    return devices_pb2.ReadMarker(**{k: v for k, v in values.items() if v is not None})


@pytest.mark.parametrize(
    ("markers", "reason", "field"),
    [
        ([], "FIELD_MISSING", "markers"),
        ([_marker(conversation=None)], "FIELD_MISSING", "markers[0].conversation"),
        (
            [_marker(), _marker(read_through_time=None)],
            "FIELD_MISSING",
            "markers[1].read_through_time",
        ),
        (
            [_marker(read_through_server_message_id="")],
            "FIELD_MISSING",
            "markers[0].read_through_server_message_id",
        ),
        (
            [_marker(read_through_server_message_id="x" * 129)],
            "FIELD_INVALID",
            "markers[0].read_through_server_message_id",
        ),
        (
            [_marker(read_through_time=timestamp_pb2.Timestamp(seconds=int(time.time()) + 86400))],
            "FIELD_INVALID",
            "markers[0].read_through_time",
        ),
    ],
)
async def test_bad_markers_are_refused_and_change_nothing(
    any_server: Server, markers: list[devices_pb2.ReadMarker], reason: str, field: str
) -> None:
    alice = await any_server.register()
    good = _marker()
    async with any_server.channel() as channel:
        error = await fails(
            stub(channel).UpdateReadMarkers(
                pb.UpdateReadMarkersRequest(request_id=uuid.uuid4().hex, markers=markers),
                metadata=alice.metadata(),
            ),
            Code.INVALID_ARGUMENT,
            reason,
        )
    (violation,) = error.detail(error_details_pb2.BadRequest).field_violations
    assert violation.field == field
    assert await list_markers(any_server, alice) == []
    assert await update_markers(any_server, alice, [good]) == [good]


async def test_too_many_markers_are_refused_with_the_limit(any_server: Server) -> None:
    alice = await any_server.register()
    async with any_server.channel() as channel:
        error = await fails(
            stub(channel).UpdateReadMarkers(
                pb.UpdateReadMarkersRequest(
                    request_id=uuid.uuid4().hex, markers=[_marker() for _ in range(101)]
                ),
                metadata=alice.metadata(),
            ),
            Code.INVALID_ARGUMENT,
            "TOO_MANY_MARKERS",
        )
        await fails(
            stub(channel).UpdateReadMarkers(
                pb.UpdateReadMarkersRequest(markers=[_marker()]), metadata=alice.metadata()
            ),
            Code.INVALID_ARGUMENT,
            "REQUEST_ID_MISSING",
        )
        await fails(
            stub(channel).ListReadMarkers(
                pb.ListReadMarkersRequest(page_token="bm90IG91cnM="), metadata=alice.metadata()
            ),
            Code.INVALID_ARGUMENT,
            "PAGE_TOKEN_INVALID",
        )
        await fails(
            stub(channel).ListReadMarkers(
                pb.ListReadMarkersRequest(page_size=-1), metadata=alice.metadata()
            ),
            Code.INVALID_ARGUMENT,
            "FIELD_INVALID",
        )
        await fails(
            stub(channel).ListReadMarkers(pb.ListReadMarkersRequest()),
            Code.UNAUTHENTICATED,
            "TOKEN_MISSING",
        )
    limit = error.detail(errordetails_pb2.LimitExceeded)
    assert (limit.setting, limit.limit, limit.actual) == (
        "devices.max_markers_per_request",
        100,
        101,
    )
    assert await list_markers(any_server, alice) == []
