"""Group messaging end to end: sender keys, fan-out on write and on read, membership
versions, admin-only sending, removal taking effect at the next message (across gateways),
and receipts aggregated per message — through real gRPC on the embedded and the
distributed stack."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from chatconnect.client import Account, ChatClient, ChatError
from chatconnect.common.v1 import common_pb2
from chatconnect.gateway.v1 import gateway_pb2
from chatconnect.gateway.v1 import gateway_service_pb2 as gw
from chatconnect.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from chatconnect.groups.v1 import groups_pb2
from chatconnect.groups.v1 import groups_service_pb2 as groups_pb
from chatconnect.groups.v1 import groups_service_pb2_grpc as groups_grpc
from chatconnect.router.v1 import router_pb2
from chatconnect.router.v1 import router_service_pb2 as router_pb
from chatconnect.router.v1 import router_service_pb2_grpc as router_grpc
from chatconnect.storage.cql_config import ScyllaConfig
from chatconnect.users.v1 import users_pb2
from chatconnect.users.v1 import users_service_pb2 as users_pb
from chatconnect.users.v1 import users_service_pb2_grpc as users_grpc

from .conftest import Server, distributed_overrides, running_server
from .servers import redis_url

Code = grpc.StatusCode
QUIET = 1.0
"""How long a connected client must stay silent to show nothing reached it."""

LARGE = {"groups": {"fan_out_on_read_threshold": 3}}
"""Makes every group of more than three members a large (fan-out-on-read) group."""


# -- helpers --------------------------------------------------------------------------


def _groups(channel: grpc.aio.Channel) -> groups_grpc.GroupsServiceStub:
    return groups_grpc.GroupsServiceStub(channel)


async def _create_group(
    server: Server, owner: Account, members: list[Account], **settings: bool
) -> groups_pb2.Group:
    async with server.channel() as channel:
        response = await _groups(channel).CreateGroup(
            groups_pb.CreateGroupRequest(
                request_id=uuid.uuid4().hex,
                info=groups_pb2.GroupInfo(encrypted_title=b"sealed title"),
                settings=groups_pb2.GroupSettings(**settings),
                member_user_ids=[m.user_id for m in members],
            ),
            metadata=owner.metadata(),
        )
    assert not response.not_added
    return response.group


async def _remove(server: Server, admin: Account, group_id: str, member: Account) -> None:
    async with server.channel() as channel:
        await _groups(channel).RemoveMembers(
            groups_pb.RemoveMembersRequest(
                request_id=uuid.uuid4().hex, group_id=group_id, user_ids=[member.user_id]
            ),
            metadata=admin.metadata(),
        )


async def _add(server: Server, admin: Account, group_id: str, member: Account) -> None:
    async with server.channel() as channel:
        await _groups(channel).AddMembers(
            groups_pb.AddMembersRequest(
                request_id=uuid.uuid4().hex, group_id=group_id, user_ids=[member.user_id]
            ),
            metadata=admin.metadata(),
        )


async def _group_message(client: ChatClient, timeout: float = 10.0) -> str:
    """The next group message the client could decrypt."""
    while True:
        item = await client.receive(timeout)
        envelope = item.envelope
        if (
            envelope is not None
            and envelope.destination.group_id
            and envelope.type == common_pb2.ENVELOPE_TYPE_SENDER_KEY_CIPHERTEXT
        ):
            assert item.plaintext is not None, "a member could not decrypt a group message"
            return item.text


async def _silent(client: ChatClient) -> None:
    """No group message reaches the client within QUIET seconds."""
    with pytest.raises(TimeoutError):
        await _group_message(client, QUIET)


async def _send_fails(client: ChatClient, outgoing: router_pb2.OutgoingMessage) -> ChatError:
    with pytest.raises(ChatError) as raised:
        await client.send(outgoing, timeout=10)
    return raised.value


def _raw_group_send(group: groups_pb2.Group, **fields: object) -> router_pb2.OutgoingMessage:
    message = router_pb2.OutgoingMessage(
        client_message_id=uuid.uuid4().hex,
        destination=common_pb2.ConversationRef(group_id=group.group_id),
        group_membership_version=group.membership_version,
        group_content=b"sealed once for the group",
    )
    for name, value in fields.items():
        setattr(message, name, value)
    return message


async def _stored_group_envelopes(server: Server, account: Account) -> list[common_pb2.Envelope]:
    """Group envelopes stored in the account's device inbox (read without connecting, so
    nothing is acknowledged on the way)."""
    async with server.channel() as channel:
        response = await router_grpc.RouterServiceStub(channel).ListInboxItems(
            router_pb.ListInboxItemsRequest(page_size=500), metadata=account.metadata()
        )
    return [
        i.envelope
        for i in response.items
        if i.HasField("envelope") and i.envelope.destination.group_id
    ]


Clients = Callable[[Account], Awaitable[ChatClient]]


@pytest.fixture
async def connect(any_server: Server) -> AsyncIterator[Clients]:
    opened: list[ChatClient] = []

    async def open_client(account: Account) -> ChatClient:
        client = any_server.client(account)
        await client.connect()
        await client.wait_drained()
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.close()


# -- fan-out on write ---------------------------------------------------------------


async def test_a_group_message_is_encrypted_once_and_reaches_every_member_device(
    any_server: Server, connect: Clients
) -> None:
    owner, ben, cat = [await any_server.register() for _ in range(3)]
    ben_laptop = await any_server.link(ben)
    group = await _create_group(any_server, owner, [ben, cat])
    sender = await connect(owner)
    readers = [await connect(a) for a in (ben, ben_laptop, cat)]

    result = await sender.send_group_text(group.group_id, "hello group")
    assert [await _group_message(r) for r in readers] == ["hello group"] * 3

    # The second message carries no key distribution: every device holds the key.
    await sender.send_group_text(group.group_id, "again")
    assert [await _group_message(r) for r in readers] == ["again"] * 3
    assert result.server_message_id


async def test_a_removed_member_receives_nothing_from_the_very_next_message(
    any_server: Server, connect: Clients
) -> None:
    owner, ben, cat = [await any_server.register() for _ in range(3)]
    group = await _create_group(any_server, owner, [ben, cat])
    sender, ben_client, cat_client = [await connect(a) for a in (owner, ben, cat)]
    await sender.send_group_text(group.group_id, "before")
    assert await _group_message(cat_client) == "before"
    await _group_message(ben_client)

    await _remove(any_server, owner, group.group_id, cat)
    await sender.send_group_text(group.group_id, "after")  # refreshes and rotates the key
    assert await _group_message(ben_client) == "after"
    await _silent(cat_client)
    assert not any(
        i.envelope.destination.group_id == group.group_id
        for i in (await cat_client.list_inbox(page_size=500)).items
        if i.HasField("envelope")
    )


async def test_a_send_for_an_old_membership_version_is_refused_and_stores_nothing(
    any_server: Server, connect: Clients
) -> None:
    owner, ben, cat = [await any_server.register() for _ in range(3)]
    group = await _create_group(any_server, owner, [ben])
    sender, ben_client = await connect(owner), await connect(ben)
    await _add(any_server, owner, group.group_id, cat)

    error = await _send_fails(sender, _raw_group_send(group))
    assert (error.code, error.reason) == (Code.FAILED_PRECONDITION, "MEMBERSHIP_VERSION_STALE")
    stale = error.detail(groups_pb2.MembershipVersionStale)
    assert stale is not None
    assert stale.request_membership_version == group.membership_version
    assert stale.current_membership_version > group.membership_version
    await _silent(ben_client)


async def test_only_admins_send_when_the_group_says_so(
    any_server: Server, connect: Clients
) -> None:
    owner, ben = await any_server.register(), await any_server.register()
    group = await _create_group(any_server, owner, [ben], only_admins_send=True)
    owner_client, ben_client = await connect(owner), await connect(ben)

    error = await _send_fails(ben_client, _raw_group_send(group))
    assert (error.code, error.reason) == (Code.PERMISSION_DENIED, "ONLY_ADMINS_SEND")
    await owner_client.send_group_text(group.group_id, "announcement")
    assert await _group_message(ben_client) == "announcement"


async def test_bad_group_sends_are_refused_with_a_reason(
    any_server: Server, connect: Clients
) -> None:
    owner, ben, stranger = [await any_server.register() for _ in range(3)]
    group = await _create_group(any_server, owner, [ben])
    owner_client, stranger_client = await connect(owner), await connect(stranger)

    missing = await _send_fails(owner_client, _raw_group_send(group, group_content=b""))
    assert (missing.code, missing.reason) == (Code.INVALID_ARGUMENT, "CONTENT_MISSING")

    outsider = await _send_fails(stranger_client, _raw_group_send(group))
    assert (outsider.code, outsider.reason) == (Code.PERMISSION_DENIED, "NOT_A_MEMBER")

    unknown = _raw_group_send(group)
    unknown.destination.group_id = str(uuid.uuid4())
    not_found = await _send_fails(owner_client, unknown)
    assert (not_found.code, not_found.reason) == (Code.NOT_FOUND, "GROUP_NOT_FOUND")

    to_stranger = _raw_group_send(group)
    to_stranger.ciphertexts.add(
        device=common_pb2.DeviceAddress(user_id=stranger.user_id, device_id=1),
        registration_id=1,
        type=common_pb2.ENVELOPE_TYPE_SENDER_KEY_DISTRIBUTION,
        content=b"key",
    )
    leak = await _send_fails(owner_client, to_stranger)
    assert (leak.code, leak.reason) == (Code.INVALID_ARGUMENT, "NOT_A_PARTICIPANT")

    pairwise = _raw_group_send(group)
    pairwise.ciphertexts.add(
        device=common_pb2.DeviceAddress(user_id=ben.user_id, device_id=1),
        registration_id=1,
        type=common_pb2.ENVELOPE_TYPE_CIPHERTEXT,
        content=b"x",
    )
    wrong_type = await _send_fails(owner_client, pairwise)
    assert (wrong_type.code, wrong_type.reason) == (Code.INVALID_ARGUMENT, "ENVELOPE_TYPE_MISSING")

    await _silent(stranger_client)
    assert await _stored_group_envelopes(any_server, ben) == []


async def test_a_member_that_stops_reading_never_delays_the_others(
    any_server: Server, connect: Clients
) -> None:
    owner, ben, stuck = [await any_server.register() for _ in range(3)]
    group = await _create_group(any_server, owner, [ben, stuck])
    sender, ben_client = await connect(owner), await connect(ben)
    async with any_server.channel() as channel:
        # A device that connects and then never reads its stream (a phone gone into a
        # tunnel with the TCP connection still open).
        frozen = gw_grpc.GatewayServiceStub(channel).Connect(metadata=stuck.metadata())
        await frozen.write(
            gw.ConnectRequest(hello=gateway_pb2.Hello(kind=common_pb2.DEVICE_KIND_PHONE))
        )
        texts = [f"message {i} " + "x" * 4000 for i in range(40)]
        for text in texts:
            await sender.send_group_text(group.group_id, text)
        assert [await _group_message(ben_client, 5.0) for _ in texts] == texts
        frozen.cancel()
    # Everything is durable for the frozen device, waiting for it to come back.
    stored = await _stored_group_envelopes(any_server, stuck)
    ciphertexts = [e for e in stored if e.type == common_pb2.ENVELOPE_TYPE_SENDER_KEY_CIPHERTEXT]
    assert len(ciphertexts) == len(texts)


# -- fan-out on read ----------------------------------------------------------------


@pytest.mark.settings(**LARGE)
async def test_a_large_group_stores_a_message_once_and_members_sync_it_by_cursor(
    any_server: Server, connect: Clients
) -> None:
    owner, *members = [await any_server.register() for _ in range(5)]
    group = await _create_group(any_server, owner, members)
    sender = await connect(owner)
    online = await connect(members[0])
    await sender.send_group_text(group.group_id, "one")  # distributes the key too
    await sender.send_group_text(group.group_id, "two")

    # Pushed to the connected member, with log positions instead of inbox sequences.
    assert [await _group_message(online), await _group_message(online)] == ["one", "two"]
    assert online.group_log_positions[group.group_id] >= 2

    # Nothing of the message itself sits in an absent member's inbox: only the key.
    stored = await _stored_group_envelopes(any_server, members[1])
    assert [e.type for e in stored] == [common_pb2.ENVELOPE_TYPE_SENDER_KEY_DISTRIBUTION]

    late = await connect(members[2])
    assert await late.sync_group_log(group.group_id, page_size=1) == 2
    assert [await _group_message(late), await _group_message(late)] == ["one", "two"]
    assert await late.sync_group_log(group.group_id) == 0


@pytest.mark.settings(**LARGE)
async def test_a_large_group_log_is_closed_to_removed_members_and_to_history_before_joining(
    any_server: Server, connect: Clients
) -> None:
    owner, *members = [await any_server.register() for _ in range(4)]
    newcomer = await any_server.register()
    group = await _create_group(any_server, owner, members)
    sender = await connect(owner)
    await sender.send_group_text(group.group_id, "old news")

    await _remove(any_server, owner, group.group_id, members[0])
    removed = await connect(members[0])
    with pytest.raises(ChatError) as raised:
        await removed.sync_group_log(group.group_id)
    assert (raised.value.code, raised.value.reason) == (Code.PERMISSION_DENIED, "NOT_A_MEMBER")

    await _add(any_server, owner, group.group_id, newcomer)
    newcomer_client = await connect(newcomer)
    await sender.send_group_text(group.group_id, "welcome")
    assert await _group_message(newcomer_client) == "welcome"
    assert await newcomer_client.sync_group_log(group.group_id) == 0  # not "old news"


# -- receipts -----------------------------------------------------------------------


async def test_receipts_are_aggregated_per_message_for_the_sender(
    any_server: Server, connect: Clients
) -> None:
    await _receipts_are_aggregated(any_server, connect, large=False)


@pytest.mark.settings(**LARGE)
async def test_receipts_of_a_large_group_are_aggregated_per_message_for_the_sender(
    any_server: Server, connect: Clients
) -> None:
    await _receipts_are_aggregated(any_server, connect, large=True)


@pytest.mark.settings(**LARGE)
async def test_a_pushed_large_group_message_counts_as_delivered_once_acknowledged(
    any_server: Server, connect: Clients
) -> None:
    # No log sync: the members' acknowledgements of the pushes alone are counted.
    await _receipts_are_aggregated(any_server, connect, large=True, sync_log=False)


async def _receipts_are_aggregated(
    any_server: Server, connect: Clients, *, large: bool, sync_log: bool = True
) -> None:
    owner, ben, cat, dan = [await any_server.register() for _ in range(4)]
    group = await _create_group(any_server, owner, [ben, cat, dan])
    sender = await connect(owner)
    ben_client, cat_client = await connect(ben), await connect(cat)
    result = await sender.send_group_text(group.group_id, "count me")
    for client in (ben_client, cat_client):
        assert await _group_message(client) == "count me"
        if large and sync_log:
            await client.sync_group_log(group.group_id)
    await ben_client.send_receipts(
        common_pb2.RECEIPT_TYPE_READ, [(owner.user_id, result.server_message_id, group.group_id)]
    )

    async def summary() -> groups_pb2.ReceiptSummary:
        async with any_server.channel() as channel:
            response = await _groups(channel).GetMessageReceiptSummary(
                groups_pb.GetMessageReceiptSummaryRequest(
                    group_id=group.group_id, server_message_id=result.server_message_id
                ),
                metadata=owner.metadata(),
            )
        return response.summary

    for _ in range(50):  # acknowledgements travel on the stream, asynchronously
        counts = await summary()
        if counts.delivered_count == 2:
            break
        await asyncio.sleep(0.1)
    assert (counts.recipient_count, counts.delivered_count, counts.read_count) == (3, 2, 1)

    # A member with read receipts turned off reads too, but is never counted as a reader.
    async with any_server.channel() as channel:
        await users_grpc.UsersServiceStub(channel).UpdatePrivacySettings(
            users_pb.UpdatePrivacySettingsRequest(
                request_id=uuid.uuid4().hex,
                settings=users_pb2.PrivacySettings(read_receipts=False),
                update_read_receipts=True,
            ),
            metadata=cat.metadata(),
        )
    await cat_client.send_receipts(
        common_pb2.RECEIPT_TYPE_READ, [(owner.user_id, result.server_message_id, group.group_id)]
    )
    counts = await summary()
    assert (counts.delivered_count, counts.read_count) == (2, 1)

    async with any_server.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _groups(channel).GetMessageReceiptSummary(
                groups_pb.GetMessageReceiptSummaryRequest(
                    group_id=group.group_id, server_message_id=result.server_message_id
                ),
                metadata=ben.metadata(),
            )
    assert ChatError.from_rpc(raised.value).reason == "NOT_MESSAGE_SENDER"


# -- across gateways ----------------------------------------------------------------


@pytest.fixture
async def two_gateways(
    tmp_path: Path, scylla_keyspace: ScyllaConfig
) -> AsyncIterator[tuple[Server, Server]]:
    """Two server processes' worth of services on one ScyllaDB keyspace and Redis."""
    shared = {
        **distributed_overrides(scylla_keyspace, redis_url()),
        "auth": {"signing_key_file": str(tmp_path / "token-signing-key.pem")},
    }
    async with (
        running_server(tmp_path / "a", shared) as first,
        running_server(tmp_path / "b", shared) as second,
    ):
        yield first, second


async def test_removal_takes_effect_at_the_next_message_across_gateways(
    two_gateways: tuple[Server, Server],
) -> None:
    first, second = two_gateways
    owner, ben, cat = [await first.register() for _ in range(3)]
    group = await _create_group(first, owner, [ben, cat])
    sender = first.client(owner)
    ben_client, cat_client = second.client(ben), second.client(cat)
    for client in (sender, ben_client, cat_client):
        await client.connect()
        await client.wait_drained()
    try:
        await sender.send_group_text(group.group_id, "before")
        assert await _group_message(cat_client) == "before"
        assert await _group_message(ben_client) == "before"

        await _remove(second, owner, group.group_id, cat)  # through the other gateway
        await sender.send_group_text(group.group_id, "after")
        assert await _group_message(ben_client) == "after"
        await _silent(cat_client)
    finally:
        for client in (sender, ben_client, cat_client):
            await client.close()
