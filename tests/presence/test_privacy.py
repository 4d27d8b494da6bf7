"""Privacy end to end, through the real UsersService settings and contact list: online and
last seen visible to everyone, contacts or nobody; hidden fields empty; reciprocity for last
seen."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from chatconnect.client import Account
from chatconnect.presence.v1 import presence_pb2 as p
from chatconnect.presence.v1 import presence_service_pb2 as pb
from chatconnect.users.v1 import users_pb2
from chatconnect.users.v1 import users_service_pb2 as users_pb
from chatconnect.users.v1 import users_service_pb2_grpc as users_grpc
from tests.conftest import Server

from .helpers import HIDDEN, OFFLINE, ONLINE, PHONE, connected, rid, stub, watching

EVERYONE, CONTACTS, NOBODY = (
    users_pb2.VISIBILITY_EVERYONE,
    users_pb2.VISIBILITY_CONTACTS,
    users_pb2.VISIBILITY_NOBODY,
)
FAST = {"presence": {"device_heartbeat_seconds": 0.2, "min_update_interval": 0.2}}


async def set_privacy(server: Server, account: Account, *, online: int, last_seen: int) -> None:
    async with server.channel() as channel:
        await users_grpc.UsersServiceStub(channel).UpdatePrivacySettings(
            users_pb.UpdatePrivacySettingsRequest(
                request_id=rid(),
                settings=users_pb2.PrivacySettings(online=online, last_seen=last_seen),  # type: ignore[arg-type]
            ),
            metadata=account.metadata(),
        )


async def add_contacts(server: Server, owner: Account, *contacts: Account) -> None:
    async with server.channel() as channel:
        await users_grpc.UsersServiceStub(channel).UpdateContacts(
            users_pb.UpdateContactsRequest(
                request_id=rid(), add_user_ids=[c.user_id for c in contacts]
            ),
            metadata=owner.metadata(),
        )


async def seen_by(server: Server, viewer: Account, subject: Account) -> p.UserPresence:
    async with server.channel() as channel:
        response = await stub(channel).GetPresence(
            pb.GetPresenceRequest(user_ids=[subject.user_id]), metadata=viewer.metadata()
        )
    [presence] = response.presences
    return presence


async def went_offline(server: Server, account: Account) -> None:
    """Connects until seen online, then disconnects: the account has a last seen."""
    async with connected(server, account, PHONE):
        await until_seen(server, account, lambda own: own.state == ONLINE)
    await until_offline(server, account)


async def until_offline(server: Server, account: Account) -> None:
    """Waits until the server has processed a hang-up: the account sees itself offline.
    The gateway learns of a hang-up asynchronously, so a read right after it may still
    find the device online."""
    await until_seen(server, account, lambda own: own.state == OFFLINE)


async def until_seen(
    server: Server, account: Account, condition: Callable[[p.UserPresence], bool]
) -> None:
    """Polls the account's own presence until `condition` holds; fails after 5 s."""
    for _ in range(100):
        own = await seen_by(server, account, account)
        if condition(own):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"presence never reached the expected state; last seen: {own}")


@pytest.mark.settings(**FAST)
async def test_everyone_sees_online_and_last_seen_by_default(any_server: Server) -> None:
    alice, stranger = await any_server.register(), await any_server.register()
    async with connected(any_server, alice, PHONE):
        online = await seen_by(any_server, stranger, alice)
        assert (online.state, len(online.devices)) == (ONLINE, 1)
    await until_offline(any_server, alice)
    offline = await seen_by(any_server, stranger, alice)
    assert offline.state == OFFLINE and offline.HasField("last_seen_time")


@pytest.mark.settings(**FAST)
async def test_contacts_only_shows_contacts_and_hides_the_rest(any_server: Server) -> None:
    alice, friend, stranger = [await any_server.register() for _ in range(3)]
    await set_privacy(any_server, alice, online=CONTACTS, last_seen=CONTACTS)
    await add_contacts(any_server, alice, friend)
    async with connected(any_server, alice, PHONE):
        assert (await seen_by(any_server, friend, alice)).state == ONLINE
        hidden = await seen_by(any_server, stranger, alice)
        assert (hidden.state, list(hidden.devices)) == (HIDDEN, [])
        # Pushed frames follow the same rules.
        async with watching(any_server, stranger, [alice.user_id]) as watch:
            pushed = await watch.presence(alice.user_id, lambda _: True)
            assert (pushed.state, list(pushed.devices)) == (HIDDEN, [])
    await until_offline(any_server, alice)
    assert (await seen_by(any_server, friend, alice)).HasField("last_seen_time")
    hidden = await seen_by(any_server, stranger, alice)
    assert not hidden.HasField("last_seen_time") and hidden.state == HIDDEN


@pytest.mark.settings(**FAST)
async def test_nobody_hides_from_contacts_too(any_server: Server) -> None:
    alice, friend = await any_server.register(), await any_server.register()
    await add_contacts(any_server, alice, friend)
    await set_privacy(any_server, alice, online=NOBODY, last_seen=NOBODY)
    async with connected(any_server, alice, PHONE):
        hidden = await seen_by(any_server, friend, alice)
        assert (hidden.state, list(hidden.devices)) == (HIDDEN, [])
    await until_offline(any_server, alice)
    hidden = await seen_by(any_server, friend, alice)
    assert not hidden.HasField("last_seen_time")
    # A user always sees itself.
    assert (await seen_by(any_server, alice, alice)).HasField("last_seen_time")


@pytest.mark.settings(**FAST)
async def test_hiding_ones_last_seen_hides_everyone_elses(any_server: Server) -> None:
    alice, bob = await any_server.register(), await any_server.register()
    await went_offline(any_server, alice)
    assert (await seen_by(any_server, bob, alice)).HasField("last_seen_time")
    await set_privacy(any_server, bob, online=EVERYONE, last_seen=NOBODY)
    reciprocal = await seen_by(any_server, bob, alice)
    assert not reciprocal.HasField("last_seen_time")
    assert reciprocal.state == OFFLINE  # online state is not reciprocal
    # Showing it to contacts only: bob sees the last seen of his contacts only.
    carol = await any_server.register()
    await went_offline(any_server, carol)
    await set_privacy(any_server, bob, online=EVERYONE, last_seen=CONTACTS)
    await add_contacts(any_server, bob, carol)
    assert (await seen_by(any_server, bob, carol)).HasField("last_seen_time")
    assert not (await seen_by(any_server, bob, alice)).HasField("last_seen_time")
