"""Typing end to end: one-to-one to the subscribed peer only, STOPPED, expiry, floods
refused; group typing aggregated per group for members only."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from chatconnect.client import Account
from chatconnect.errordetails.v1 import errordetails_pb2
from chatconnect.groups.v1 import groups_pb2
from chatconnect.groups.v1 import groups_service_pb2 as groups_pb
from chatconnect.groups.v1 import groups_service_pb2_grpc as groups_grpc
from chatconnect.presence.v1 import presence_pb2 as p
from chatconnect.presence.v1 import presence_service_pb2 as pb
from tests.conftest import Server

from .helpers import fails, group, one_to_one, rid, stub, watching

Code = grpc.StatusCode
TYPING, RECORDING, STOPPED = (
    p.TYPING_STATE_TYPING,
    p.TYPING_STATE_RECORDING_AUDIO,
    p.TYPING_STATE_STOPPED,
)


async def send_typing(
    server: Server, account: Account, conversation: object, state: int, request_id: str = ""
) -> pb.SendTypingResponse:
    async with server.channel() as channel:
        request = pb.SendTypingRequest(
            request_id=request_id or rid(),
            conversation=conversation,  # type: ignore[arg-type]
            state=state,  # type: ignore[arg-type]
        )
        return await stub(channel).SendTyping(request, metadata=account.metadata())


def typing_frames(watch: object) -> list[p.TypingIndicator]:
    return watch.of("typing")  # type: ignore[attr-defined,no-any-return]


@pytest.mark.settings(
    presence={"typing_ttl": 4.0, "typing_refresh_interval": 2.0},
    devices={"link_begins_per_minute": 600},  # the test Redis is shared by many tests
)
async def test_one_to_one_typing_reaches_only_the_subscribed_peer(any_server: Server) -> None:
    alice, bob, carol = [await any_server.register() for _ in range(3)]
    bob_desktop = await any_server.link(bob)
    async with (
        watching(any_server, bob, conversations=[one_to_one(alice.user_id)]) as on_screen,
        watching(any_server, bob_desktop, conversations=[one_to_one(carol.user_id)]) as other,
    ):
        before = time.time()
        sent = await send_typing(any_server, alice, one_to_one(bob.user_id), TYPING)
        expire = sent.expire_time.ToMicroseconds() / 1e6
        assert before + 4.0 - 1 <= expire <= time.time() + 4.0  # now + typing_ttl
        frame = await on_screen.wait_for(lambda f: f.WhichOneof("event") == "typing")
        indicator = frame.typing
        assert indicator.conversation.user_id == alice.user_id
        assert (indicator.device.user_id, indicator.device.device_id) == (
            alice.user_id,
            alice.device_id,
        )
        assert indicator.state == TYPING
        assert indicator.expire_time == sent.expire_time
        await send_typing(any_server, alice, one_to_one(bob.user_id), STOPPED)
        stopped = await on_screen.wait_for(lambda f: f.WhichOneof("event") == "typing")
        assert stopped.typing.state == STOPPED
        await asyncio.sleep(0.5)
    # The desktop shows carol's chat, not alice's: it got nothing.
    assert typing_frames(other) == []


@pytest.mark.settings(presence={"typing_events_per_minute": 6, "typing_burst": 3})
async def test_a_typing_flood_is_rate_limited(any_server: Server) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    async with watching(any_server, bob, conversations=[one_to_one(alice.user_id)]) as watch:
        for _ in range(3):
            await send_typing(any_server, alice, one_to_one(bob.user_id), TYPING)
        error = await fails(send_typing(any_server, alice, one_to_one(bob.user_id), TYPING))
        assert (error.code, error.reason) == (Code.RESOURCE_EXHAUSTED, "RATE_LIMITED")
        retry = error.detail(errordetails_pb2.RateLimited)
        assert retry is not None and retry.retry_after.ToTimedelta().total_seconds() > 0
        await asyncio.sleep(0.5)
    # The refused one reached nobody.
    assert len(typing_frames(watch)) == 3


async def test_typing_with_bad_input_is_refused(any_server: Server) -> None:
    alice = await any_server.register()
    async with any_server.channel() as channel:
        no_conversation = pb.SendTypingRequest(request_id=rid(), state=TYPING)
        error = await fails(stub(channel).SendTyping(no_conversation, metadata=alice.metadata()))
        assert (error.code, error.reason) == (Code.INVALID_ARGUMENT, "CONVERSATION_MISSING")
    error = await fails(send_typing(any_server, alice, one_to_one(alice.user_id), 0))
    assert (error.code, error.reason) == (Code.INVALID_ARGUMENT, "STATE_INVALID")
    error = await fails(send_typing(any_server, alice, one_to_one(alice.user_id), TYPING))
    assert (error.code, error.reason) == (Code.PERMISSION_DENIED, "NOT_A_PARTICIPANT")


async def test_a_repeated_request_id_sends_once(any_server: Server) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    async with watching(any_server, bob, conversations=[one_to_one(alice.user_id)]) as watch:
        request_id = rid()
        first = await send_typing(any_server, alice, one_to_one(bob.user_id), TYPING, request_id)
        again = await send_typing(any_server, alice, one_to_one(bob.user_id), TYPING, request_id)
        assert again.expire_time == first.expire_time
        await asyncio.sleep(0.5)
    assert len(typing_frames(watch)) == 1


async def create_group(server: Server, owner: Account, *members: Account) -> str:
    async with server.channel() as channel:
        response = await groups_grpc.GroupsServiceStub(channel).CreateGroup(
            groups_pb.CreateGroupRequest(
                request_id=rid(),
                info=groups_pb2.GroupInfo(encrypted_title=b"title"),
                member_user_ids=[m.user_id for m in members],
            ),
            metadata=owner.metadata(),
        )
    return response.group.group_id


@pytest.mark.settings(presence={"group_typing_interval": 1.0})
async def test_group_typing_is_aggregated_for_each_member(any_server: Server) -> None:
    ana, ben, cleo, dan = [await any_server.register() for _ in range(4)]
    group_id = await create_group(any_server, ana, ben, cleo, dan)
    async with (
        watching(any_server, dan, conversations=[group(group_id)]) as dan_watch,
        watching(any_server, ana, conversations=[group(group_id)]) as ana_watch,
    ):
        await asyncio.gather(
            send_typing(any_server, ana, group(group_id), TYPING),
            send_typing(any_server, ben, group(group_id), TYPING),
            send_typing(any_server, cleo, group(group_id), RECORDING),
        )
        frame = await dan_watch.wait_for(lambda f: f.WhichOneof("event") == "group_typing")
        summary = frame.group_typing
        assert (summary.group_id, summary.typing_count, summary.recording_count) == (
            group_id,
            3,
            1,
        )
        assert set(summary.typing_user_ids) == {ana.user_id, ben.user_id, cleo.user_id}
        # Ana is not told that she types herself.
        mine = await ana_watch.wait_for(lambda f: f.WhichOneof("event") == "group_typing")
        assert mine.group_typing.typing_count == 2
        assert ana.user_id not in mine.group_typing.typing_user_ids
        await asyncio.sleep(0.5)
        # One event for three typing members, not three.
        assert len(dan_watch.of("group_typing")) == 1
        await asyncio.gather(
            send_typing(any_server, ben, group(group_id), STOPPED),
            send_typing(any_server, cleo, group(group_id), STOPPED),
        )
        fewer = await dan_watch.wait_for(lambda f: f.WhichOneof("event") == "group_typing")
        assert list(fewer.group_typing.typing_user_ids) == [ana.user_id]


@pytest.mark.settings(
    presence={"group_typing_interval": 0.2, "typing_ttl": 1.0, "typing_refresh_interval": 0.5}
)
async def test_group_typing_lapses_without_refresh(any_server: Server) -> None:
    ana, ben = await any_server.register(), await any_server.register()
    group_id = await create_group(any_server, ana, ben)
    async with watching(any_server, ben, conversations=[group(group_id)]) as watch:
        await send_typing(any_server, ana, group(group_id), TYPING)
        typing = await watch.wait_for(lambda f: f.WhichOneof("event") == "group_typing")
        assert typing.group_typing.typing_count == 1
        cleared = await watch.wait_for(lambda f: f.WhichOneof("event") == "group_typing", 3)
        assert cleared.group_typing.typing_count == 0


async def test_non_members_cannot_type_or_follow_a_group(any_server: Server) -> None:
    ana, ben, eve = [await any_server.register() for _ in range(3)]
    group_id = await create_group(any_server, ana, ben)
    error = await fails(send_typing(any_server, eve, group(group_id), TYPING))
    assert (error.code, error.reason) == (Code.PERMISSION_DENIED, "NOT_A_PARTICIPANT")
    async with any_server.channel() as channel:
        request = pb.SubscribeRequest(
            subscription=p.PresenceSubscription(conversations=[group(group_id)])
        )
        call = stub(channel).Subscribe(request, metadata=eve.metadata())
        error = await fails(call.read())
    assert (error.code, error.reason) == (Code.PERMISSION_DENIED, "NOT_A_PARTICIPANT")
