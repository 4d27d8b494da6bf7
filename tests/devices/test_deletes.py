"""Deleting messages for me and for everyone, end to end on both stores: tombstones reach
the right devices (online by push, offline from the inbox), converge when deleted twice,
and are never lost to a late sync; and every refusal says why and changes nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2

from chatconnect.common.v1 import common_pb2
from chatconnect.devices.v1 import devices_pb2
from chatconnect.devices.v1 import devices_service_pb2 as pb
from chatconnect.errordetails.v1 import errordetails_pb2
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
    with_user,
)

pytestmark = pytest.mark.settings(devices=LINKS_UNLIMITED)


def _summary(tombstones: list[devices_pb2.Tombstone]) -> list[tuple[str, str, int]]:
    """(conversation user, message id, scope) of each tombstone, in order."""
    return [(t.conversation.user_id, t.server_message_id, t.scope) for t in tombstones]


async def test_delete_for_me_reaches_my_devices_only(any_server: Server, connect) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    laptop = await any_server.link(alice)
    tablet = await any_server.link(alice)  # offline throughout
    phone_client, laptop_client = await connect(alice), await connect(laptop)
    bob_client = await connect(bob)
    sent = await bob_client.send_text(alice.user_id, "delete me")
    await phone_client.receive_message()

    (stored,) = await delete(
        any_server, alice, with_user(bob.user_id), [sent.server_message_id], FOR_ME
    )
    assert (stored.conversation.user_id, stored.server_message_id, stored.scope) == (
        bob.user_id,
        sent.server_message_id,
        FOR_ME,
    )
    assert (stored.deleted_by.user_id, stored.deleted_by.device_id) == (alice.user_id, 1)

    await next_notice(laptop_client, TOMBSTONES_CHANGED)
    assert await notices_in_inbox(any_server, tablet, TOMBSTONES_CHANGED) == 1
    await no_notice(phone_client, TOMBSTONES_CHANGED)
    await no_notice(bob_client, TOMBSTONES_CHANGED)
    for device in (alice, laptop, tablet):
        assert await list_tombstones(any_server, device) == [stored]
    assert await list_tombstones(any_server, bob) == []  # bob still has his message


async def test_delete_for_everyone_reaches_the_peer_and_never_comes_back(
    any_server: Server, connect
) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    bob_laptop = await any_server.link(bob)  # offline until the end
    alice_laptop = await any_server.link(alice)
    alice_client, bob_client = await connect(alice), await connect(bob)
    sent = await alice_client.send_text(bob.user_id, "oops")
    await bob_client.receive_message()

    (mine,) = await delete(
        any_server, alice, with_user(bob.user_id), [sent.server_message_id], FOR_EVERYONE
    )
    assert mine.scope == FOR_EVERYONE
    await next_notice(bob_client, TOMBSTONES_CHANGED)
    await no_notice(alice_client, TOMBSTONES_CHANGED)
    assert await notices_in_inbox(any_server, alice_laptop, TOMBSTONES_CHANGED) == 1

    # Bob's devices see it in their conversation with alice, deleted by alice's phone.
    (theirs,) = await list_tombstones(any_server, bob)
    assert _summary([theirs]) == [(alice.user_id, sent.server_message_id, FOR_EVERYONE)]
    assert (theirs.deleted_by.user_id, theirs.deleted_by.device_id) == (alice.user_id, 1)
    assert theirs.delete_time == mine.delete_time

    # The device that was offline syncs late: the notice waits in its inbox and the
    # tombstone is listed, from the start and from a time before the deletion.
    assert await notices_in_inbox(any_server, bob_laptop, TOMBSTONES_CHANGED) == 1
    assert await list_tombstones(any_server, bob_laptop) == [theirs]
    before = timestamp_pb2.Timestamp(seconds=mine.delete_time.seconds - 1)
    assert await list_tombstones(any_server, bob_laptop, since=before) == [theirs]
    assert await list_tombstones(any_server, bob_laptop, since=mine.delete_time) == [theirs]

    # Bob deleting it for himself afterwards does not lower it or move it.
    (again,) = await delete(
        any_server, bob, with_user(alice.user_id), [sent.server_message_id], FOR_ME
    )
    assert again == theirs
    assert await list_tombstones(any_server, bob_laptop) == [theirs]


async def test_two_devices_deleting_the_same_message_leave_one_tombstone(
    any_server: Server, connect
) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    laptop = await any_server.link(alice)
    sent = await (await connect(bob)).send_text(alice.user_id, "twice")
    conversation = with_user(bob.user_id)
    results = await asyncio.gather(
        *(
            delete(any_server, device, conversation, [sent.server_message_id], FOR_ME)
            for device in (alice, laptop, alice, laptop)
        )
    )
    first = results[0][0]
    assert all(r == [first] for r in results), "the devices disagree on the tombstone"
    for device in (alice, laptop):
        assert await list_tombstones(any_server, device) == [first]
    # A repeat with the same request id changes nothing either.
    request_id = uuid.uuid4().hex
    for _ in range(2):
        assert await delete(
            any_server,
            laptop,
            conversation,
            [sent.server_message_id],
            FOR_ME,
            request_id=request_id,
        ) == [first]
    assert await list_tombstones(any_server, alice) == [first]


async def test_for_everyone_after_for_me_raises_the_tombstone(any_server: Server, connect) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    laptop = await any_server.link(alice)
    sent = await (await connect(alice)).send_text(bob.user_id, "first for me, then for all")
    conversation = with_user(bob.user_id)
    (mine,) = await delete(any_server, laptop, conversation, [sent.server_message_id], FOR_ME)
    (raised,) = await delete(
        any_server, alice, conversation, [sent.server_message_id], FOR_EVERYONE
    )
    assert raised.scope == FOR_EVERYONE and raised.delete_time == mine.delete_time
    assert (raised.deleted_by.user_id, raised.deleted_by.device_id) == (alice.user_id, 1)
    assert await list_tombstones(any_server, laptop) == [raised]
    assert _summary(await list_tombstones(any_server, bob)) == [
        (alice.user_id, sent.server_message_id, FOR_EVERYONE)
    ]


@pytest.mark.settings(devices={**LINKS_UNLIMITED, "delete_for_everyone_window_seconds": 1})
async def test_delete_for_everyone_after_the_window_is_refused(any_server: Server, connect) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    sent = await (await connect(alice)).send_text(bob.user_id, "too late to unsend")
    await asyncio.sleep(1.5)
    async with any_server.channel() as channel:
        error = await fails(
            stub(channel).DeleteMessages(
                pb.DeleteMessagesRequest(
                    request_id=uuid.uuid4().hex,
                    conversation=with_user(bob.user_id),
                    server_message_ids=[sent.server_message_id],
                    scope=FOR_EVERYONE,
                ),
                metadata=alice.metadata(),
            ),
            Code.FAILED_PRECONDITION,
            "DELETE_WINDOW_PASSED",
        )
    info = error.detail(error_details_pb2.ErrorInfo)
    assert info.metadata["server_message_id"] == sent.server_message_id
    for account in (alice, bob):
        assert await list_tombstones(any_server, account) == []
    # Deleting it for herself still works.
    assert _summary(
        await delete(any_server, alice, with_user(bob.user_id), [sent.server_message_id], FOR_ME)
    ) == [(bob.user_id, sent.server_message_id, FOR_ME)]
    assert await list_tombstones(any_server, bob) == []


async def test_only_the_sender_deletes_for_everyone(any_server: Server, connect) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    sent = await (await connect(alice)).send_text(bob.user_id, "mine to unsend")
    async with any_server.channel() as channel:
        await fails(
            stub(channel).DeleteMessages(
                pb.DeleteMessagesRequest(
                    request_id=uuid.uuid4().hex,
                    conversation=with_user(alice.user_id),
                    server_message_ids=[sent.server_message_id],
                    scope=FOR_EVERYONE,
                ),
                metadata=bob.metadata(),
            ),
            Code.PERMISSION_DENIED,
            "NOT_MESSAGE_SENDER",
        )
    for account in (alice, bob):
        assert await list_tombstones(any_server, account) == []


async def test_other_peoples_and_unknown_messages_are_not_found(
    any_server: Server, connect
) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    carol = await any_server.register()
    sent = await (await connect(alice)).send_text(bob.user_id, "between alice and bob")
    message_id = sent.server_message_id
    unknown = uuid.uuid4().hex
    cases = [
        # Carol was not in the conversation: she learns nothing about the message.
        (carol, with_user(alice.user_id), [message_id], FOR_ME),
        (carol, with_user(bob.user_id), [message_id], FOR_EVERYONE),
        # Alice names the wrong conversation.
        (alice, with_user(carol.user_id), [message_id], FOR_ME),
        (alice, common_pb2.ConversationRef(group_id=str(uuid.uuid4())), [message_id], FOR_ME),
        # One unknown id fails the whole request.
        (alice, with_user(bob.user_id), [message_id, unknown], FOR_EVERYONE),
        (bob, with_user(alice.user_id), [unknown], FOR_ME),
    ]
    async with any_server.channel() as channel:
        for caller, conversation, ids, scope in cases:
            error = await fails(
                stub(channel).DeleteMessages(
                    pb.DeleteMessagesRequest(
                        request_id=uuid.uuid4().hex,
                        conversation=conversation,
                        server_message_ids=ids,
                        scope=scope,  # type: ignore[arg-type]
                    ),
                    metadata=caller.metadata(),
                ),
                Code.NOT_FOUND,
                "MESSAGE_NOT_FOUND",
            )
            assert error.detail(error_details_pb2.ErrorInfo).metadata["server_message_id"] in ids
    for account in (alice, bob, carol):
        assert await list_tombstones(any_server, account) == []


def _request(**fields: object) -> pb.DeleteMessagesRequest:
    values: dict[str, object] = {
        "request_id": uuid.uuid4().hex,
        "conversation": with_user(str(uuid.uuid4())),
        "server_message_ids": [uuid.uuid4().hex],
        "scope": FOR_ME,
    }
    values.update(fields)
    return pb.DeleteMessagesRequest(**{k: v for k, v in values.items() if v is not None})


@pytest.mark.parametrize(
    ("request_", "reason", "field"),
    [
        (_request(request_id=None), "REQUEST_ID_MISSING", "request_id"),
        (_request(conversation=None), "FIELD_MISSING", "conversation"),
        (_request(server_message_ids=[]), "FIELD_MISSING", "server_message_ids"),
        (_request(server_message_ids=["a", ""]), "FIELD_MISSING", "server_message_ids[1]"),
        (_request(scope=None), "FIELD_MISSING", "scope"),
        (_request(scope=7), "FIELD_INVALID", "scope"),
        (_request(conversation=with_user("u" * 129)), "FIELD_INVALID", "conversation"),
    ],
)
async def test_bad_delete_requests_are_refused(
    any_server: Server, request_: pb.DeleteMessagesRequest, reason: str, field: str
) -> None:
    alice = await any_server.register()
    async with any_server.channel() as channel:
        error = await fails(
            stub(channel).DeleteMessages(request_, metadata=alice.metadata()),
            Code.INVALID_ARGUMENT,
            reason,
        )
    (violation,) = error.detail(error_details_pb2.BadRequest).field_violations
    assert violation.field == field
    assert await list_tombstones(any_server, alice) == []


async def test_limits_and_bad_listing_requests_say_why(any_server: Server, connect) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    sent = await (await connect(alice)).send_text(bob.user_id, "kept")
    ids = [sent.server_message_id] * 101
    async with any_server.channel() as channel:
        error = await fails(
            stub(channel).DeleteMessages(
                _request(conversation=with_user(bob.user_id), server_message_ids=ids),
                metadata=alice.metadata(),
            ),
            Code.INVALID_ARGUMENT,
            "TOO_MANY_MESSAGES",
        )
        limit = error.detail(errordetails_pb2.LimitExceeded)
        assert (limit.setting, limit.limit, limit.actual) == (
            "devices.max_messages_per_delete",
            100,
            101,
        )
        await fails(
            stub(channel).ListTombstones(
                pb.ListTombstonesRequest(page_token="garbage"), metadata=alice.metadata()
            ),
            Code.INVALID_ARGUMENT,
            "PAGE_TOKEN_INVALID",
        )
        await fails(
            stub(channel).ListTombstones(
                pb.ListTombstonesRequest(page_size=-5), metadata=alice.metadata()
            ),
            Code.INVALID_ARGUMENT,
            "FIELD_INVALID",
        )
        await fails(stub(channel).DeleteMessages(_request()), Code.UNAUTHENTICATED, "TOKEN_MISSING")
    assert await list_tombstones(any_server, alice) == []


async def test_tombstones_are_listed_oldest_first_in_pages(any_server: Server, connect) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    laptop = await any_server.link(alice)
    alice_client = await connect(alice)
    sent = [await alice_client.send_text(bob.user_id, f"m{i}") for i in range(5)]
    conversation = with_user(bob.user_id)
    deleted = []
    for message in sent:
        deleted += await delete(
            any_server, alice, conversation, [message.server_message_id], FOR_ME
        )
    # Listed from another device, two per page.
    listed = await list_tombstones(any_server, laptop, page_size=2)
    assert listed == deleted
    assert [t.server_message_id for t in listed] == [m.server_message_id for m in sent]
    async with any_server.channel() as channel:
        page = await stub(channel).ListTombstones(
            pb.ListTombstonesRequest(page_size=2), metadata=laptop.metadata()
        )
    assert len(page.tombstones) == 2 and page.next_page_token
    # A device that applied the first three resumes from the newest time it applied.
    since = deleted[2].delete_time
    assert await list_tombstones(any_server, laptop, since=since) == deleted[2:]
