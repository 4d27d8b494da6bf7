"""ListMembers, ListMyGroups and GetGroupDevices through real gRPC on both stacks:
order, pagination, bad page parameters, and device pages bound to one membership
version."""

from __future__ import annotations

import pytest

from chatconnect.groups.v1 import groups_pb2
from chatconnect.groups.v1 import groups_service_pb2 as pb
from tests.conftest import Server

from .conftest import People
from .helpers import ADMIN, MEMBER, OWNER, Code, GroupsCaller, rejected, rid


async def test_members_are_listed_owner_first_then_admins_then_by_join_time(
    people: People,
) -> None:
    alice, bob, carol, dave, erin = await people(5)
    gid = (await alice.create(bob.user_id)).group.group_id
    for user in (carol, dave, erin):
        await alice.add(gid, user.user_id)
    await alice.set_role(gid, erin.user_id, ADMIN)
    listed: list[tuple[str, int]] = []
    token = ""
    pages = 0
    while True:
        page = await bob.call(
            "ListMembers", pb.ListMembersRequest(group_id=gid, page_size=2, page_token=token)
        )
        assert page.membership_version == 4
        listed += [(m.user_id, m.role) for m in page.members]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert listed == [
        (alice.user_id, OWNER),
        (erin.user_id, ADMIN),
        (bob.user_id, MEMBER),
        (carol.user_id, MEMBER),
        (dave.user_id, MEMBER),
    ]
    await rejected(
        bob.call("ListMembers", pb.ListMembersRequest(group_id=gid, page_token="garbage")),
        Code.INVALID_ARGUMENT,
        "PAGE_TOKEN_INVALID",
    )
    await rejected(
        bob.call("ListMembers", pb.ListMembersRequest(group_id=gid, page_size=-1)),
        Code.INVALID_ARGUMENT,
        "PAGE_SIZE_INVALID",
    )


async def test_my_groups_most_recently_changed_first_with_revisions(people: People) -> None:
    alice, bob = await people(2)
    first = (await alice.create(bob.user_id)).group.group_id
    second = (await bob.create(alice.user_id)).group.group_id
    third = (await alice.create()).group.group_id
    await alice.invite(first)  # the oldest group changes last
    seen: list[groups_pb2.Group] = []
    token = ""
    while True:
        page = await alice.call(
            "ListMyGroups", pb.ListMyGroupsRequest(page_size=2, page_token=token)
        )
        seen += page.groups
        token = page.next_page_token
        if not token:
            break
    assert [g.group_id for g in seen] == [first, third, second]
    assert [(g.revision, g.caller_role) for g in seen] == [(2, OWNER), (1, OWNER), (1, MEMBER)]
    bobs = await bob.call("ListMyGroups", pb.ListMyGroupsRequest())
    assert {g.group_id for g in bobs.groups} == {first, second}


async def _devices(caller: GroupsCaller, group_id: str) -> tuple[dict[str, list[int]], int]:
    response = await caller.call("GetGroupDevices", pb.GetGroupDevicesRequest(group_id=group_id))
    return (
        {m.user_id: [d.device_id for d in m.devices] for m in response.members},
        response.membership_version,
    )


# Linking is rate limited per client IP; on the shared test Redis every suite links from
# 127.0.0.1, so this test must not depend on what others used of that bucket.
@pytest.mark.settings(devices={"link_begins_per_minute": 600})
async def test_group_devices_list_every_device_but_the_calling_one(
    any_server: Server, people: People
) -> None:
    alice, bob, carol = await people(3)
    laptop = GroupsCaller(any_server, await any_server.link(alice.account))
    try:
        gid = (await alice.create(bob.user_id)).group.group_id
        assert await _devices(alice, gid) == ({alice.user_id: [2], bob.user_id: [1]}, 1)
        assert await _devices(laptop, gid) == ({alice.user_id: [1], bob.user_id: [1]}, 1)

        # Pages are bound to the membership version of the first page.
        first = await alice.call(
            "GetGroupDevices", pb.GetGroupDevicesRequest(group_id=gid, page_size=1)
        )
        assert len(first.members) == 1 and first.next_page_token
        await alice.add(gid, carol.user_id)
        error = await rejected(
            alice.call(
                "GetGroupDevices",
                pb.GetGroupDevicesRequest(
                    group_id=gid, page_size=1, page_token=first.next_page_token
                ),
            ),
            Code.FAILED_PRECONDITION,
            "MEMBERSHIP_VERSION_STALE",
        )
        stale = error.detail(groups_pb2.MembershipVersionStale)
        assert stale is not None
        assert (stale.group_id, stale.request_membership_version) == (gid, 1)
        assert stale.current_membership_version == 2
        devices, version = await _devices(alice, gid)
        assert version == 2 and devices[carol.user_id] == [1]
    finally:
        await laptop.close()


async def test_a_removed_member_sees_nothing_of_the_group(people: People) -> None:
    alice, bob = await people(2)
    gid = (await alice.create(bob.user_id)).group.group_id
    await alice.remove(gid, bob.user_id)
    devices, _ = await _devices(alice, gid)
    assert bob.user_id not in devices
    await rejected(
        bob.call("GetGroupDevices", pb.GetGroupDevicesRequest(group_id=gid)),
        Code.PERMISSION_DENIED,
        "NOT_A_MEMBER",
    )
    mine = await bob.call("ListMyGroups", pb.ListMyGroupsRequest())
    assert list(mine.groups) == []
    await rejected(
        bob.call("LeaveGroup", pb.LeaveGroupRequest(request_id=rid(), group_id=gid)),
        Code.PERMISSION_DENIED,
        "NOT_A_MEMBER",
    )
