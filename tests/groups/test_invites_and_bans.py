"""Invite links (create, replace, revoke, expire), joining with them, join approval, and
bans, through real gRPC on both stacks."""

from __future__ import annotations

import asyncio

import pytest

from chatconnect.groups.v1 import groups_pb2
from chatconnect.groups.v1 import groups_service_pb2 as pb

from .conftest import People
from .helpers import MEMBER, OWNER, Code, GroupsCaller, limit, rejected, rid

APPROVAL = groups_pb2.GroupSettings(join_approval_required=True)


async def _preview(caller: GroupsCaller, code: str) -> groups_pb2.InviteLinkPreview:
    response = await caller.call(
        "GetInviteLinkPreview", pb.GetInviteLinkPreviewRequest(invite_code=code)
    )
    return response.preview


async def _requests(caller: GroupsCaller, group_id: str, size: int = 0) -> list[str]:
    found: list[str] = []
    token = ""
    while True:
        page = await caller.call(
            "ListJoinRequests",
            pb.ListJoinRequestsRequest(group_id=group_id, page_size=size, page_token=token),
        )
        found += [r.user_id for r in page.join_requests]
        token = page.next_page_token
        if not token:
            return found


async def test_join_with_the_link_then_revoke_it(people: People) -> None:
    alice, bob, carol = await people(3)
    gid = (await alice.create()).group.group_id
    link = await alice.invite(gid)
    assert len(link.invite_code) >= 22 and not link.HasField("expire_time")
    preview = await _preview(bob, link.invite_code)
    assert (preview.group_id, preview.member_count, preview.info.encrypted_title) == (
        gid,
        1,
        b"title",
    )
    joined = await bob.join(link.invite_code)
    assert joined.outcome == groups_pb2.JOIN_OUTCOME_JOINED
    assert joined.group.caller_role == MEMBER and joined.group.membership_version == 2
    again = await bob.join(link.invite_code)
    assert again.outcome == groups_pb2.JOIN_OUTCOME_ALREADY_MEMBER
    current = await alice.call("GetInviteLink", pb.GetInviteLinkRequest(group_id=gid))
    assert current.invite_link.use_count == 1
    assert await alice.members(gid) == {alice.user_id: OWNER, bob.user_id: MEMBER}

    revoked = await alice.call(
        "RevokeInviteLink", pb.RevokeInviteLinkRequest(request_id=rid(), group_id=gid)
    )
    assert revoked.revision == (await alice.get(gid)).revision
    await rejected(_preview(carol, link.invite_code), Code.NOT_FOUND, "INVITE_LINK_NOT_FOUND")
    await rejected(carol.join(link.invite_code), Code.NOT_FOUND, "INVITE_LINK_NOT_FOUND")
    await rejected(
        alice.call("GetInviteLink", pb.GetInviteLinkRequest(group_id=gid)),
        Code.NOT_FOUND,
        "INVITE_LINK_NOT_FOUND",
    )
    await rejected(
        alice.call("RevokeInviteLink", pb.RevokeInviteLinkRequest(request_id=rid(), group_id=gid)),
        Code.NOT_FOUND,
        "INVITE_LINK_NOT_FOUND",
    )
    assert carol.user_id not in await alice.members(gid)

    # A new link replaces the old one.
    first = await alice.invite(gid)
    second = await alice.invite(gid)
    await rejected(carol.join(first.invite_code), Code.NOT_FOUND, "INVITE_LINK_NOT_FOUND")
    assert (await carol.join(second.invite_code)).outcome == groups_pb2.JOIN_OUTCOME_JOINED
    await rejected(carol.join("no-such-code"), Code.NOT_FOUND, "INVITE_LINK_NOT_FOUND")


async def test_a_repeated_join_returns_the_first_outcome(people: People) -> None:
    alice, bob = await people(2)
    gid = (await alice.create()).group.group_id
    link = await alice.invite(gid)
    join = pb.JoinGroupByInviteLinkRequest(request_id=rid(), invite_code=link.invite_code)
    first = await bob.call("JoinGroupByInviteLink", join)
    assert await bob.call("JoinGroupByInviteLink", join) == first
    assert first.outcome == groups_pb2.JOIN_OUTCOME_JOINED
    assert (await alice.get(gid)).membership_version == first.group.membership_version


@pytest.mark.settings(groups={"invite_link_ttl_seconds": 1})
async def test_an_expired_link_stops_working(people: People) -> None:
    alice, bob = await people(2)
    gid = (await alice.create()).group.group_id
    link = await alice.invite(gid)
    assert link.expire_time.seconds - link.create_time.seconds in (0, 1, 2)
    await asyncio.sleep(1.2)
    before = await alice.get(gid)
    await rejected(bob.join(link.invite_code), Code.NOT_FOUND, "INVITE_LINK_NOT_FOUND")
    await rejected(_preview(bob, link.invite_code), Code.NOT_FOUND, "INVITE_LINK_NOT_FOUND")
    after = await alice.get(gid)
    assert (after.revision, after.member_count) == (before.revision, 1)


async def test_join_approval_flow(people: People) -> None:
    alice, bob, carol, dave, erin = await people(5)
    gid = (await alice.create(settings=APPROVAL)).group.group_id
    link = await alice.invite(gid)
    assert (await _preview(bob, link.invite_code)).join_approval_required
    requested = await bob.join(link.invite_code)
    assert requested.outcome == groups_pb2.JOIN_OUTCOME_REQUESTED
    assert requested.join_request.user_id == bob.user_id and not requested.HasField("group")
    assert (await bob.join(link.invite_code)).join_request == requested.join_request
    await rejected(bob.get(gid), Code.PERMISSION_DENIED, "NOT_A_MEMBER")
    for user in (carol, dave, erin):
        await user.join(link.invite_code)
    expected = [bob.user_id, carol.user_id, dave.user_id, erin.user_id]
    assert await _requests(alice, gid, size=3) == expected  # oldest first, over two pages

    version = (await alice.get(gid)).membership_version
    approved = await alice.call(
        "ApproveJoinRequests",
        pb.ApproveJoinRequestsRequest(
            request_id=rid(), group_id=gid, user_ids=[bob.user_id, alice.user_id]
        ),
    )
    assert [(m.user_id, m.added_by_user_id) for m in approved.added] == [
        (bob.user_id, alice.user_id)
    ]
    assert approved.group.membership_version == version + 1
    denied = await alice.call(
        "DenyJoinRequests",
        pb.DenyJoinRequestsRequest(request_id=rid(), group_id=gid, user_ids=[carol.user_id]),
    )
    assert list(denied.denied_user_ids) == [carol.user_id]
    # Dave withdraws his request by leaving.
    await dave.call("LeaveGroup", pb.LeaveGroupRequest(request_id=rid(), group_id=gid))
    assert await _requests(alice, gid) == [erin.user_id]
    assert await alice.members(gid) == {alice.user_id: OWNER, bob.user_id: MEMBER}


async def test_bans_remove_and_keep_out_until_lifted(people: People) -> None:
    alice, bob, carol = await people(3)
    gid = (await alice.create(bob.user_id, carol.user_id)).group.group_id
    link = await alice.invite(gid)
    before = await alice.get(gid)
    await rejected(
        alice.call(
            "BanMembers",
            pb.BanMembersRequest(request_id=rid(), group_id=gid, user_ids=[alice.user_id]),
        ),
        Code.INVALID_ARGUMENT,
        "CANNOT_BAN_SELF",
    )
    banned = await alice.call(
        "BanMembers", pb.BanMembersRequest(request_id=rid(), group_id=gid, user_ids=[bob.user_id])
    )
    assert [(b.user_id, b.banned_by_user_id) for b in banned.banned] == [
        (bob.user_id, alice.user_id)
    ]
    assert banned.group.membership_version == before.membership_version + 1
    assert await alice.members(gid) == {alice.user_id: OWNER, carol.user_id: MEMBER}
    await rejected(bob.get(gid), Code.PERMISSION_DENIED, "NOT_A_MEMBER")
    await rejected(bob.join(link.invite_code), Code.PERMISSION_DENIED, "BANNED")
    await rejected(_preview(bob, link.invite_code), Code.PERMISSION_DENIED, "BANNED")
    readded = await alice.add(gid, bob.user_id)
    assert [(f.user_id, f.reason) for f in readded.not_added] == [
        (bob.user_id, groups_pb2.ADD_MEMBER_FAILURE_REASON_BANNED)
    ]
    listed = await alice.call("ListBannedMembers", pb.ListBannedMembersRequest(group_id=gid))
    assert [b.user_id for b in listed.banned] == [bob.user_id]

    unbanned = await alice.call(
        "UnbanMembers",
        pb.UnbanMembersRequest(request_id=rid(), group_id=gid, user_ids=[bob.user_id]),
    )
    assert list(unbanned.unbanned_user_ids) == [bob.user_id]
    assert (await bob.join(link.invite_code)).outcome == groups_pb2.JOIN_OUTCOME_JOINED


@pytest.mark.settings(groups={"max_bans": 2})
async def test_bans_deny_join_requests_and_are_limited(people: People) -> None:
    alice, bob, carol, dave = await people(4)
    gid = (await alice.create(settings=APPROVAL)).group.group_id
    link = await alice.invite(gid)
    await bob.join(link.invite_code)
    await alice.call(
        "BanMembers",
        pb.BanMembersRequest(request_id=rid(), group_id=gid, user_ids=[bob.user_id, carol.user_id]),
    )
    assert await _requests(alice, gid) == []
    error = await rejected(
        alice.call(
            "BanMembers",
            pb.BanMembersRequest(request_id=rid(), group_id=gid, user_ids=[dave.user_id]),
        ),
        Code.RESOURCE_EXHAUSTED,
        "TOO_MANY_BANS",
    )
    assert (limit(error).setting, limit(error).limit, limit(error).actual) == (
        "groups.max_bans",
        2,
        3,
    )
    page = await alice.call(
        "ListBannedMembers", pb.ListBannedMembersRequest(group_id=gid, page_size=1)
    )
    rest = await alice.call(
        "ListBannedMembers",
        pb.ListBannedMembersRequest(group_id=gid, page_size=1, page_token=page.next_page_token),
    )
    assert {page.banned[0].user_id, rest.banned[0].user_id} == {bob.user_id, carol.user_id}
    assert rest.next_page_token == ""


@pytest.mark.settings(groups={"invite_lookups_per_minute": 2})
async def test_invite_lookups_are_rate_limited(people: People) -> None:
    alice, bob = await people(2)
    gid = (await alice.create()).group.group_id
    link = await alice.invite(gid)
    for _ in range(2):
        await _preview(bob, link.invite_code)
    error = await rejected(_preview(bob, link.invite_code), Code.RESOURCE_EXHAUSTED, "RATE_LIMITED")
    assert error.message
