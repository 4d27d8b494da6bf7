"""Bounded subscriptions end to end: limits refused with nothing changed, the list replaced
on the open stream, a newer stream replacing an older one, batch limits."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from chatconnect.presence.v1 import presence_pb2 as p
from chatconnect.presence.v1 import presence_service_pb2 as pb
from tests.conftest import Server

from .helpers import (
    OFFLINE,
    ONLINE,
    PHONE,
    connected,
    fails,
    limit_of,
    one_to_one,
    rid,
    stub,
    watching,
)

Code = grpc.StatusCode
FAST = {"presence": {"device_heartbeat_seconds": 0.2, "min_update_interval": 0.2}}


def users(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


@pytest.mark.settings(presence={"max_subscriptions": 5, "max_typing_conversations": 2})
async def test_subscribing_to_too_many_is_refused(any_server: Server) -> None:
    bob = await any_server.register()
    async with any_server.channel() as channel:
        too_many = pb.SubscribeRequest(subscription=p.PresenceSubscription(user_ids=users(6)))
        call = stub(channel).Subscribe(too_many, metadata=bob.metadata())
        error = await fails(call.read())
        assert (error.code, error.reason) == (Code.RESOURCE_EXHAUSTED, "TOO_MANY_SUBSCRIPTIONS")
        assert limit_of(error) == ("presence.max_subscriptions", 5, 6)
        conversations = [one_to_one(u) for u in users(3)]
        chatty = pb.SubscribeRequest(
            subscription=p.PresenceSubscription(conversations=conversations)
        )
        error = await fails(stub(channel).Subscribe(chatty, metadata=bob.metadata()).read())
        assert (error.code, error.reason) == (
            Code.RESOURCE_EXHAUSTED,
            "TOO_MANY_TYPING_CONVERSATIONS",
        )
        assert limit_of(error) == ("presence.max_typing_conversations", 2, 3)
        # Nothing was opened: there is no stream to update.
        update = pb.UpdateSubscriptionRequest(
            request_id=rid(), subscription=p.PresenceSubscription(user_ids=users(1))
        )
        error = await fails(stub(channel).UpdateSubscription(update, metadata=bob.metadata()))
        assert (error.code, error.reason) == (Code.FAILED_PRECONDITION, "NO_OPEN_SUBSCRIPTION")


async def test_invalid_user_ids_are_refused(any_server: Server) -> None:
    bob = await any_server.register()
    async with any_server.channel() as channel:
        request = pb.SubscribeRequest(subscription=p.PresenceSubscription(user_ids=["nope"]))
        error = await fails(stub(channel).Subscribe(request, metadata=bob.metadata()).read())
        assert (error.code, error.reason) == (Code.INVALID_ARGUMENT, "USER_ID_INVALID")
        get = pb.GetPresenceRequest(user_ids=[""])
        error = await fails(stub(channel).GetPresence(get, metadata=bob.metadata()))
        assert (error.code, error.reason) == (Code.INVALID_ARGUMENT, "USER_ID_INVALID")


@pytest.mark.settings(presence={"max_batch_users": 3})
async def test_get_presence_of_too_many_users_is_refused(any_server: Server) -> None:
    bob = await any_server.register()
    async with any_server.channel() as channel:
        request = pb.GetPresenceRequest(user_ids=users(4))
        error = await fails(stub(channel).GetPresence(request, metadata=bob.metadata()))
        assert (error.code, error.reason) == (Code.RESOURCE_EXHAUSTED, "TOO_MANY_USERS")
        assert limit_of(error) == ("presence.max_batch_users", 3, 4)
        ok = await stub(channel).GetPresence(
            pb.GetPresenceRequest(user_ids=users(3)), metadata=bob.metadata()
        )
        assert len(ok.presences) == 3


@pytest.mark.settings(presence={**FAST["presence"], "max_subscriptions": 2})
async def test_update_subscription_replaces_what_the_open_stream_follows(
    any_server: Server,
) -> None:
    alice, carol, bob = [await any_server.register() for _ in range(3)]
    async with (
        watching(any_server, bob, [alice.user_id]) as watch,
        any_server.channel() as channel,
    ):
        async with connected(any_server, alice, PHONE):
            await watch.presence(alice.user_id, lambda u: u.state == ONLINE)
            too_many = pb.UpdateSubscriptionRequest(
                request_id=rid(), subscription=p.PresenceSubscription(user_ids=users(3))
            )
            error = await fails(stub(channel).UpdateSubscription(too_many, metadata=bob.metadata()))
            assert (error.code, error.reason) == (
                Code.RESOURCE_EXHAUSTED,
                "TOO_MANY_SUBSCRIPTIONS",
            )
            # Duplicates are removed; carol's current presence is sent at once.
            update = pb.UpdateSubscriptionRequest(
                request_id=rid(),
                subscription=p.PresenceSubscription(user_ids=[carol.user_id, carol.user_id]),
            )
            response = await stub(channel).UpdateSubscription(update, metadata=bob.metadata())
            assert list(response.subscription.user_ids) == [carol.user_id]
            await watch.presence(carol.user_id, lambda _: True)
        # alice goes offline, carol comes online: only carol is pushed.
        async with connected(any_server, carol, PHONE):
            await watch.presence(carol.user_id, lambda u: u.state == ONLINE)
        await asyncio.sleep(0.5)
        assert [u.state for u in watch.presences(alice.user_id)] == [OFFLINE, ONLINE]


@pytest.mark.settings(**FAST)
async def test_a_second_subscribe_of_a_device_replaces_the_first(any_server: Server) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    async with (
        watching(any_server, bob, [alice.user_id]) as old,
        watching(any_server, bob, [alice.user_id]) as new,
    ):
        error = await old.ended()
        assert error is not None
        assert (error.code(), _reason(error)) == (Code.ABORTED, "SUBSCRIPTION_REPLACED")
        async with connected(any_server, alice, PHONE):
            await new.presence(alice.user_id, lambda u: u.state == ONLINE)


def _reason(error: grpc.aio.AioRpcError) -> str:
    from .helpers import error_of

    return error_of(error).reason
