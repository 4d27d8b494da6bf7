"""The `group_add` privacy setting, as AddMembers and CreateGroup enforce it."""

from __future__ import annotations

from chatconnect.client import Account
from chatconnect.groups.v1 import groups_pb2
from chatconnect.users.v1 import users_pb2
from chatconnect.users.v1 import users_service_pb2 as users_pb
from chatconnect.users.v1 import users_service_pb2_grpc as users_grpc
from tests.conftest import Server

from .conftest import People
from .helpers import rid

RESTRICTED = groups_pb2.ADD_MEMBER_FAILURE_REASON_PRIVACY_RESTRICTED


async def _users(server: Server, account: Account, method: str, request: object) -> None:
    async with server.channel() as channel:
        stub = users_grpc.UsersServiceStub(channel)
        await getattr(stub, method)(request, metadata=account.metadata(), timeout=10)


async def _group_add(server: Server, account: Account, visibility: int) -> None:
    await _users(
        server,
        account,
        "UpdatePrivacySettings",
        users_pb.UpdatePrivacySettingsRequest(
            request_id=rid(),
            settings=users_pb2.PrivacySettings(group_add=visibility),  # type: ignore[arg-type]
        ),
    )


async def test_group_add_privacy_decides_who_may_add_whom(
    any_server: Server, people: People
) -> None:
    alice, bob, carol, dave, erin = await people(5)
    await _group_add(any_server, bob.account, users_pb2.VISIBILITY_NOBODY)
    await _group_add(any_server, carol.account, users_pb2.VISIBILITY_CONTACTS)
    await _group_add(any_server, dave.account, users_pb2.VISIBILITY_CONTACTS)
    await _users(
        any_server,
        carol.account,
        "UpdateContacts",
        users_pb.UpdateContactsRequest(request_id=rid(), add_user_ids=[alice.user_id]),
    )
    created = await alice.create(bob.user_id, carol.user_id)
    assert [(f.user_id, f.reason) for f in created.not_added] == [(bob.user_id, RESTRICTED)]
    gid = created.group.group_id
    added = await alice.add(gid, dave.user_id, erin.user_id)
    assert [m.user_id for m in added.added] == [erin.user_id]
    assert [(f.user_id, f.reason) for f in added.not_added] == [(dave.user_id, RESTRICTED)]
    assert set(await alice.members(gid)) == {alice.user_id, carol.user_id, erin.user_id}
    # The invite link is the way in for them.
    link = await alice.invite(gid)
    assert (await bob.join(link.invite_code)).outcome == groups_pb2.JOIN_OUTCOME_JOINED
