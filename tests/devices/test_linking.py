"""The linking guarantees end to end on both stores: every existing device learns the new
device list on link and on unlink; the device limit (default 8 besides the primary)
refuses the next link and changes nothing; an expired link code is refused; an unlinked
device's credentials stop working at once."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from nacl.public import PrivateKey

from chatconnect.client import Account, ChatClient
from chatconnect.client.keys import seal_to_ephemeral
from chatconnect.common.v1 import common_pb2
from chatconnect.devices.v1 import devices_service_pb2 as pb
from chatconnect.router.v1 import router_service_pb2 as router_pb
from chatconnect.router.v1 import router_service_pb2_grpc as router_grpc
from chatconnect.users.v1 import users_service_pb2 as users_pb
from chatconnect.users.v1 import users_service_pb2_grpc as users_grpc
from tests.conftest import Server
from tests.devices.rpc import LINKS_UNLIMITED, Code, fails, stub

pytestmark = pytest.mark.settings(devices=LINKS_UNLIMITED)


async def _device_ids(server: Server, account: Account) -> list[int]:
    async with server.channel() as channel:
        response = await stub(channel).ListDevices(
            pb.ListDevicesRequest(), metadata=account.metadata()
        )
    return [d.device_id for d in response.devices]


async def _next_device_list(client: ChatClient) -> list[int]:
    """The device list of the next DEVICE_LIST_CHANGED notice on the client's stream."""
    while True:
        item = await client.receive(timeout=5)
        envelope = item.envelope
        if envelope is not None and envelope.notice.type == (
            common_pb2.NOTICE_TYPE_DEVICE_LIST_CHANGED
        ):
            assert envelope.type == common_pb2.ENVELOPE_TYPE_SERVER_NOTICE
            assert envelope.notice.subject_user_id == client.account.user_id
            return [d.device_id for d in envelope.notice.devices]


async def _device_lists_in_inbox(server: Server, account: Account) -> list[list[int]]:
    """The device lists of the DEVICE_LIST_CHANGED notices waiting in the inbox."""
    async with server.channel() as channel:
        response = await router_grpc.RouterServiceStub(channel).ListInboxItems(
            router_pb.ListInboxItemsRequest(page_size=500), metadata=account.metadata()
        )
    return [
        [d.device_id for d in item.envelope.notice.devices]
        for item in response.items
        if item.envelope.notice.type == common_pb2.NOTICE_TYPE_DEVICE_LIST_CHANGED
    ]


async def _unlink(server: Server, by: Account, device_id: int) -> None:
    async with server.channel() as channel:
        await stub(channel).UnlinkDevice(
            pb.UnlinkDeviceRequest(request_id=uuid.uuid4().hex, device_id=device_id),
            metadata=by.metadata(),
        )


class _NewDevice:
    """A new device's side of the QR flow, up to the approval."""

    def __init__(self, begun: pb.BeginLinkResponse, ephemeral: PrivateKey) -> None:
        self.begun = begun
        self.ephemeral = ephemeral

    @classmethod
    async def begin(cls, server: Server) -> _NewDevice:
        ephemeral = PrivateKey.generate()
        async with server.channel() as channel:
            begun = await stub(channel).BeginLink(
                pb.BeginLinkRequest(
                    request_id=uuid.uuid4().hex,
                    ephemeral_public_key=bytes(ephemeral.public_key),
                    kind=common_pb2.DEVICE_KIND_TABLET,
                )
            )
        return cls(begun, ephemeral)

    def approve(self, channel: grpc.aio.Channel, approver: Account) -> object:
        return stub(channel).ApproveLink(
            pb.ApproveLinkRequest(
                request_id=uuid.uuid4().hex,
                link_code=self.begun.link_code,
                encrypted_provisioning_message=seal_to_ephemeral(
                    bytes(self.ephemeral.public_key), bytes(approver.keys.identity)
                ),
            ),
            metadata=approver.metadata(),
        )

    def await_approval(self, channel: grpc.aio.Channel) -> object:
        return stub(channel).AwaitLinkApproval(
            pb.AwaitLinkApprovalRequest(
                link_secret=self.begun.link_secret, wait=duration_pb2.Duration()
            )
        )


async def test_every_device_learns_the_device_list_on_link_and_unlink(
    any_server: Server, connect
) -> None:
    alice = await any_server.register()
    phone = await connect(alice)
    laptop = await any_server.link(alice)  # stays offline: it finds the notices later
    assert await _next_device_list(phone) == [1, 2]
    tablet = await any_server.link(alice)
    assert await _next_device_list(phone) == [1, 2, 3]
    await _unlink(any_server, alice, tablet.device_id)
    assert await _next_device_list(phone) == [1, 2]
    assert await _device_lists_in_inbox(any_server, laptop) == [[1, 2], [1, 2, 3], [1, 2]]
    for device in (alice, laptop):
        assert await _device_ids(any_server, device) == [1, 2]


async def test_the_default_device_limit_refuses_a_ninth_link_and_changes_nothing(
    any_server: Server, connect
) -> None:
    alice = await any_server.register()
    phone = await connect(alice)
    linked = []
    for count in range(2, 10):
        linked.append(await any_server.link(alice))
        assert await _next_device_list(phone) == list(range(1, count + 1))
    assert await _device_ids(any_server, alice) == list(range(1, 10))
    notices_before = await _device_lists_in_inbox(any_server, linked[0])

    ninth = await _NewDevice.begin(any_server)
    async with any_server.channel() as channel:
        error = await fails(
            ninth.approve(channel, alice), Code.RESOURCE_EXHAUSTED, "DEVICE_LIMIT_REACHED"
        )
        info = error.detail(error_details_pb2.ErrorInfo)
        assert (info.metadata["setting"], info.metadata["limit"]) == (
            "devices.max_linked_devices",
            "8",
        )
        # Nothing changed: no device, no notice, and the new device is not approved.
        await fails(ninth.await_approval(channel), Code.FAILED_PRECONDITION, "LINK_NOT_APPROVED")
    assert await _device_ids(any_server, alice) == list(range(1, 10))
    assert await _device_lists_in_inbox(any_server, linked[0]) == notices_before
    with pytest.raises(TimeoutError):
        await _next_device_list_quickly(phone)

    # Room made, the same code goes through.
    await _unlink(any_server, alice, linked[-1].device_id)
    async with any_server.channel() as channel:
        await ninth.approve(channel, alice)
        approval = await ninth.await_approval(channel)
    assert approval.device_id == 10  # type: ignore[attr-defined]


async def _next_device_list_quickly(client: ChatClient) -> list[int]:
    return await asyncio.wait_for(_next_device_list(client), 0.3)


@pytest.mark.settings(devices={**LINKS_UNLIMITED, "link_code_ttl_seconds": 1})
async def test_an_expired_link_code_is_refused(any_server: Server) -> None:
    alice = await any_server.register()
    new_device = await _NewDevice.begin(any_server)
    await asyncio.sleep(1.3)
    async with any_server.channel() as channel:
        await fails(
            new_device.approve(channel, alice), Code.FAILED_PRECONDITION, "LINK_CODE_EXPIRED"
        )
        await fails(
            new_device.await_approval(channel), Code.FAILED_PRECONDITION, "LINK_CODE_EXPIRED"
        )
    assert await _device_ids(any_server, alice) == [1]
    assert await _device_lists_in_inbox(any_server, alice) == []


async def test_an_unlinked_devices_credentials_stop_working(any_server: Server, connect) -> None:
    alice = await any_server.register()
    laptop = await any_server.link(alice)
    laptop_client = await connect(laptop)
    await _unlink(any_server, alice, laptop.device_id)
    for _ in range(250):  # the open stream ends within 5 s
        if laptop_client.fatal is not None:
            break
        await asyncio.sleep(0.02)
    assert laptop_client.fatal is not None and laptop_client.fatal.reason == "DEVICE_REVOKED"
    async with any_server.channel() as channel:
        await fails(
            stub(channel).ListDevices(pb.ListDevicesRequest(), metadata=laptop.metadata()),
            Code.UNAUTHENTICATED,
            "DEVICE_REVOKED",
        )
        await fails(
            users_grpc.UsersServiceStub(channel).RefreshSession(
                users_pb.RefreshSessionRequest(refresh_token=laptop.refresh_token)
            ),
            Code.UNAUTHENTICATED,
            "REFRESH_TOKEN_INVALID",
            "users.chatconnect",
        )
    assert await _device_ids(any_server, alice) == [1]
