"""Deleting group messages end to end on both stores, with groups made through
GroupsService (CreateGroup): the sender within the window or an admin at any time deletes
for every member, in bounded batches; other members only for themselves; outsiders learn
nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from chatconnect.client import Account
from chatconnect.common.v1 import common_pb2
from chatconnect.devices.v1 import devices_service_pb2 as pb
from chatconnect.groups.v1 import groups_pb2
from chatconnect.groups.v1 import groups_service_pb2 as groups_pb
from chatconnect.groups.v1 import groups_service_pb2_grpc as groups_grpc
from tests.conftest import Server
from tests.devices.rpc import (
    FOR_EVERYONE,
    FOR_ME,
    LINKS_UNLIMITED,
    TOMBSTONES_CHANGED,
    Code,
    delete,
    fails,
    list_tombstones,
    next_notice,
    no_notice,
    notices_in_inbox,
    stub,
)

pytestmark = pytest.mark.settings(devices=LINKS_UNLIMITED)


async def _create_group(server: Server, owner: Account, *members: Account) -> str:
    async with server.channel() as channel:
        response = await groups_grpc.GroupsServiceStub(channel).CreateGroup(
            groups_pb.CreateGroupRequest(
                request_id=uuid.uuid4().hex,
                info=groups_pb2.GroupInfo(encrypted_title=b"sealed title"),
                member_user_ids=[m.user_id for m in members],
            ),
            metadata=owner.metadata(),
        )
    assert not response.not_added
    return response.group.group_id


def _in_group(group_id: str) -> common_pb2.ConversationRef:
    return common_pb2.ConversationRef(group_id=group_id)


async def _refused(
    server: Server, caller: Account, group_id: str, message_id: str, scope: int, reason: str
) -> None:
    code = {
        "NOT_GROUP_ADMIN": Code.PERMISSION_DENIED,
        "MESSAGE_NOT_FOUND": Code.NOT_FOUND,
        "DELETE_WINDOW_PASSED": Code.FAILED_PRECONDITION,
    }[reason]
    async with server.channel() as channel:
        await fails(
            stub(channel).DeleteMessages(
                pb.DeleteMessagesRequest(
                    request_id=uuid.uuid4().hex,
                    conversation=_in_group(group_id),
                    server_message_ids=[message_id],
                    scope=scope,  # type: ignore[arg-type]
                ),
                metadata=caller.metadata(),
            ),
            code,
            reason,
        )


@pytest.mark.settings(devices={**LINKS_UNLIMITED, "sync_batch_size": 1})
async def test_an_admin_deletes_a_members_message_for_every_member(
    any_server: Server, connect
) -> None:
    owner, bob, carol, dave = [await any_server.register() for _ in range(4)]
    owner_laptop = await any_server.link(owner)  # offline
    group_id = await _create_group(any_server, owner, bob, carol)
    bob_client, carol_client = await connect(bob), await connect(carol)
    owner_client = await connect(owner)
    sent = await bob_client.send_group_text(group_id, "regrettable")
    await carol_client.receive_message()
    message_id = sent.server_message_id

    # A member who did not send it, or an outsider, cannot delete it for everyone.
    await _refused(any_server, carol, group_id, message_id, FOR_EVERYONE, "NOT_GROUP_ADMIN")
    await _refused(any_server, dave, group_id, message_id, FOR_ME, "MESSAGE_NOT_FOUND")
    await _refused(any_server, dave, group_id, message_id, FOR_EVERYONE, "MESSAGE_NOT_FOUND")
    for account in (owner, bob, carol, dave):
        assert await list_tombstones(any_server, account) == []

    (stored,) = await delete(any_server, owner, _in_group(group_id), [message_id], FOR_EVERYONE)
    assert (stored.conversation.group_id, stored.server_message_id, stored.scope) == (
        group_id,
        message_id,
        FOR_EVERYONE,
    )
    # Every member's account has it (written one account per batch here), every other
    # device is told: online by push, offline from its inbox.
    for account in (owner, owner_laptop, bob, carol):
        assert await list_tombstones(any_server, account) == [stored]
    for client in (bob_client, carol_client):
        await next_notice(client, TOMBSTONES_CHANGED)
    await no_notice(owner_client, TOMBSTONES_CHANGED)
    assert await notices_in_inbox(any_server, owner_laptop, TOMBSTONES_CHANGED) == 1
    assert await list_tombstones(any_server, dave) == []


async def test_a_member_deletes_for_themselves_and_the_sender_for_everyone(
    any_server: Server, connect
) -> None:
    owner, bob, carol = [await any_server.register() for _ in range(3)]
    group_id = await _create_group(any_server, owner, bob, carol)
    bob_client = await connect(bob)
    first = await bob_client.send_group_text(group_id, "one")
    second = await bob_client.send_group_text(group_id, "two")

    (mine,) = await delete(
        any_server, carol, _in_group(group_id), [first.server_message_id], FOR_ME
    )
    assert mine.scope == FOR_ME
    assert await list_tombstones(any_server, carol) == [mine]
    assert await list_tombstones(any_server, owner) == []

    # The sender, within the window, deletes both for everyone; carol's FOR_ME is raised.
    ids = [first.server_message_id, second.server_message_id]
    await delete(any_server, bob, _in_group(group_id), ids, FOR_EVERYONE)
    for account in (owner, bob, carol):
        listed = await list_tombstones(any_server, account)
        assert sorted(t.server_message_id for t in listed) == sorted(ids)
        assert {t.scope for t in listed} == {FOR_EVERYONE}
    carols = {t.server_message_id: t for t in await list_tombstones(any_server, carol)}
    assert carols[first.server_message_id].delete_time == mine.delete_time


@pytest.mark.settings(devices={**LINKS_UNLIMITED, "delete_for_everyone_window_seconds": 1})
async def test_after_the_window_only_an_admin_deletes_for_everyone(
    any_server: Server, connect
) -> None:
    owner, bob = await any_server.register(), await any_server.register()
    group_id = await _create_group(any_server, owner, bob)
    sent = await (await connect(bob)).send_group_text(group_id, "old news")
    await asyncio.sleep(1.5)
    await _refused(
        any_server, bob, group_id, sent.server_message_id, FOR_EVERYONE, "DELETE_WINDOW_PASSED"
    )
    assert await list_tombstones(any_server, bob) == []
    await delete(any_server, owner, _in_group(group_id), [sent.server_message_id], FOR_EVERYONE)
    (theirs,) = await list_tombstones(any_server, bob)
    assert theirs.scope == FOR_EVERYONE
