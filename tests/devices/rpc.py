"""Helpers of the end-to-end device-sync tests: DevicesService calls as a client makes
them, error checks as a client sees them, and the notices devices receive."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2

from chatconnect.client import Account, ChatClient, ChatError
from chatconnect.common.v1 import common_pb2
from chatconnect.devices.v1 import devices_pb2
from chatconnect.devices.v1 import devices_service_pb2 as pb
from chatconnect.devices.v1 import devices_service_pb2_grpc as pb_grpc
from chatconnect.router.v1 import router_pb2
from chatconnect.router.v1 import router_service_pb2 as router_pb
from chatconnect.router.v1 import router_service_pb2_grpc as router_grpc
from tests.conftest import Server

DEVICES = "devices.chatconnect"
Code = grpc.StatusCode
QUIET = 0.3
"""How long a connected client must stay silent to show it was told nothing."""

LINKS_UNLIMITED = {"link_begins_per_minute": 6000.0}
"""Settings of [devices] for tests that link devices: the per-IP BeginLink rate limit lives
in the test Redis shared by every distributed test, so these tests lift it to neither trip
it nor depend on what other tests did."""

FOR_ME = devices_pb2.DELETE_SCOPE_FOR_ME
FOR_EVERYONE = devices_pb2.DELETE_SCOPE_FOR_EVERYONE
MARKERS_CHANGED = common_pb2.NOTICE_TYPE_READ_MARKERS_CHANGED
TOMBSTONES_CHANGED = common_pb2.NOTICE_TYPE_TOMBSTONES_CHANGED


def stub(channel: grpc.aio.Channel) -> pb_grpc.DevicesServiceStub:
    return pb_grpc.DevicesServiceStub(channel)


def with_user(user_id: str) -> common_pb2.ConversationRef:
    return common_pb2.ConversationRef(user_id=user_id)


def marker_for(
    conversation: common_pb2.ConversationRef, message: router_pb2.SendResult
) -> devices_pb2.ReadMarker:
    """ "Read up to `message`" in `conversation`."""
    return devices_pb2.ReadMarker(
        conversation=conversation,
        read_through_time=message.server_time,
        read_through_server_message_id=message.server_message_id,
    )


async def update_markers(
    server: Server,
    account: Account,
    markers: Sequence[devices_pb2.ReadMarker],
    *,
    request_id: str | None = None,
) -> list[devices_pb2.ReadMarker]:
    async with server.channel() as channel:
        response = await stub(channel).UpdateReadMarkers(
            pb.UpdateReadMarkersRequest(
                request_id=uuid.uuid4().hex if request_id is None else request_id,
                markers=list(markers),
            ),
            metadata=account.metadata(),
        )
    return list(response.markers)


async def list_markers(server: Server, account: Account) -> list[devices_pb2.ReadMarker]:
    """Every marker of the account, page by page."""
    markers: list[devices_pb2.ReadMarker] = []
    token = ""
    async with server.channel() as channel:
        while True:
            response = await stub(channel).ListReadMarkers(
                pb.ListReadMarkersRequest(page_size=2, page_token=token),
                metadata=account.metadata(),
            )
            markers += response.markers
            token = response.next_page_token
            if not token:
                return markers


async def delete(
    server: Server,
    account: Account,
    conversation: common_pb2.ConversationRef,
    ids: Sequence[str],
    scope: int,
    *,
    request_id: str | None = None,
) -> list[devices_pb2.Tombstone]:
    async with server.channel() as channel:
        response = await stub(channel).DeleteMessages(
            pb.DeleteMessagesRequest(
                request_id=uuid.uuid4().hex if request_id is None else request_id,
                conversation=conversation,
                server_message_ids=list(ids),
                scope=scope,  # type: ignore[arg-type]
            ),
            metadata=account.metadata(),
        )
    return list(response.tombstones)


async def list_tombstones(
    server: Server,
    account: Account,
    *,
    page_size: int = 0,
    since: timestamp_pb2.Timestamp | None = None,
) -> list[devices_pb2.Tombstone]:
    """Every tombstone of the account (from `since`), page by page, oldest first."""
    tombstones: list[devices_pb2.Tombstone] = []
    token = ""
    async with server.channel() as channel:
        while True:
            response = await stub(channel).ListTombstones(
                pb.ListTombstonesRequest(page_size=page_size, page_token=token, since_time=since),
                metadata=account.metadata(),
            )
            tombstones += response.tombstones
            token = response.next_page_token
            if not token:
                return tombstones


async def fails(call: object, code: Code, reason: str, domain: str = DEVICES) -> ChatError:
    """Awaits `call`, which must fail with `code` and an ErrorInfo of `reason` and
    `domain`; returns the error as the SDK sees it."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    error = ChatError.from_rpc(raised.value)
    info = error.detail(error_details_pb2.ErrorInfo)
    assert info is not None, f"no ErrorInfo in {raised.value!r}"
    assert (error.code, error.reason, info.domain) == (code, reason, domain), error
    return error


async def notices_in_inbox(server: Server, account: Account, notice_type: int) -> int:
    """How many notices of `notice_type` about its own account wait in the device's inbox
    (what a device that was offline finds when it syncs)."""
    async with server.channel() as channel:
        response = await router_grpc.RouterServiceStub(channel).ListInboxItems(
            router_pb.ListInboxItemsRequest(page_size=500), metadata=account.metadata()
        )
    found = 0
    for item in response.items:
        envelope = item.envelope
        if envelope.type == common_pb2.ENVELOPE_TYPE_SERVER_NOTICE and (
            envelope.notice.type == notice_type
        ):
            assert envelope.notice.subject_user_id == account.user_id
            assert not envelope.HasField("sender")
            found += 1
    return found


async def next_notice(client: ChatClient, notice_type: int, *, timeout: float = 5.0) -> None:
    """Waits for a notice of `notice_type` on the client's stream, skipping messages,
    receipts and other notices."""
    while True:
        item = await client.receive(timeout=timeout)
        envelope = item.envelope
        if (
            envelope is not None
            and envelope.type == common_pb2.ENVELOPE_TYPE_SERVER_NOTICE
            and envelope.notice.type == notice_type
        ):
            assert envelope.notice.subject_user_id == client.account.user_id
            return


async def no_notice(client: ChatClient, notice_type: int) -> None:
    """The client receives no notice of `notice_type` for a while."""
    with pytest.raises(TimeoutError):
        await next_notice(client, notice_type, timeout=QUIET)
