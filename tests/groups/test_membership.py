"""Creating groups, members, roles and settings, through real gRPC on both stacks: every
permission rule is checked as the caller sees it (status, ErrorInfo reason), and that
nothing changed, by reading the group back."""

from __future__ import annotations

import uuid

import pytest
from google.protobuf import field_mask_pb2

from chatconnect.groups.v1 import groups_pb2
from chatconnect.groups.v1 import groups_service_pb2 as pb

from .conftest import People
from .helpers import ADMIN, MEMBER, OWNER, Code, GroupsCaller, limit, rejected, rid


async def _snapshot(caller: GroupsCaller, group_id: str) -> tuple[int, int, dict[str, int]]:
    """What must not move when a call is refused: revision, version and members."""
    group = await caller.get(group_id)
    return group.revision, group.membership_version, await caller.members(group_id)


async def test_create_makes_the_caller_owner_and_reports_who_was_not_added(
    people: People,
) -> None:
    alice, bob, carol = await people(3)
    unknown = uuid.uuid4().hex
    created = await alice.create(bob.user_id, bob.user_id, unknown, alice.user_id)
    group = created.group
    assert (group.revision, group.membership_version, group.member_count) == (1, 1, 2)
    assert group.caller_role == OWNER and group.created_by_user_id == alice.user_id
    assert group.max_members == 1024
    assert [(f.user_id, f.reason) for f in created.not_added] == [
        (unknown, groups_pb2.ADD_MEMBER_FAILURE_REASON_USER_NOT_FOUND)
    ]
    assert (await bob.get(group.group_id)).caller_role == MEMBER
    assert await bob.members(group.group_id) == {alice.user_id: OWNER, bob.user_id: MEMBER}
    await rejected(carol.get(group.group_id), Code.PERMISSION_DENIED, "NOT_A_MEMBER")
    await rejected(carol.get(str(uuid.uuid4())), Code.NOT_FOUND, "GROUP_NOT_FOUND")
    await rejected(carol.get("not-a-group"), Code.INVALID_ARGUMENT, "GROUP_ID_INVALID")


async def test_create_rejects_bad_input(people: People) -> None:
    (alice,) = await people(1)
    title = groups_pb2.GroupInfo(encrypted_title=b"t")
    await rejected(
        alice.call("CreateGroup", pb.CreateGroupRequest(info=title)),
        Code.INVALID_ARGUMENT,
        "REQUEST_ID_MISSING",
    )
    await rejected(
        alice.call("CreateGroup", pb.CreateGroupRequest(request_id=rid())),
        Code.INVALID_ARGUMENT,
        "FIELD_MISSING",
    )
    error = await rejected(
        alice.call(
            "CreateGroup",
            pb.CreateGroupRequest(
                request_id=rid(), info=groups_pb2.GroupInfo(encrypted_title=b"x" * 4097)
            ),
        ),
        Code.INVALID_ARGUMENT,
        "INFO_TOO_LARGE",
    )
    assert (limit(error).setting, limit(error).limit) == ("groups.max_info_bytes", 4096)
    listed = await alice.call("ListMyGroups", pb.ListMyGroupsRequest())
    assert list(listed.groups) == []


async def test_every_change_bumps_the_revision_and_member_changes_the_version(
    people: People,
) -> None:
    alice, bob, carol = await people(3)
    group = (await alice.create()).group
    gid = group.group_id
    steps = [
        ("add", lambda: alice.add(gid, bob.user_id), True),
        (
            "info",
            lambda: alice.call(
                "UpdateGroupInfo",
                pb.UpdateGroupInfoRequest(
                    request_id=rid(), group_id=gid, info=groups_pb2.GroupInfo(encrypted_title=b"2")
                ),
            ),
            False,
        ),
        (
            "settings",
            lambda: alice.call(
                "UpdateGroupSettings",
                pb.UpdateGroupSettingsRequest(
                    request_id=rid(),
                    group_id=gid,
                    settings=groups_pb2.GroupSettings(only_admins_send=True),
                    update_mask=field_mask_pb2.FieldMask(paths=["only_admins_send"]),
                ),
            ),
            False,
        ),
        ("role", lambda: alice.set_role(gid, bob.user_id, ADMIN), False),
        ("invite", lambda: alice.invite(gid), False),
        ("add again", lambda: alice.add(gid, carol.user_id), True),
        ("remove", lambda: alice.remove(gid, carol.user_id), True),
    ]
    revision, version = group.revision, group.membership_version
    for name, step, members_change in steps:
        await step()
        now = await alice.get(gid)
        assert now.revision == revision + 1, name
        assert now.membership_version == version + (1 if members_change else 0), name
        revision, version = now.revision, now.membership_version
    final = await alice.get(gid)
    assert final.settings.only_admins_send and final.info.encrypted_title == b"2"


async def test_members_cannot_act_without_the_role_and_nothing_changes(people: People) -> None:
    alice, bob, carol, dave = await people(4)
    strict = groups_pb2.GroupSettings(only_admins_edit_info=True, only_admins_add_members=True)
    gid = (await alice.create(bob.user_id, carol.user_id, settings=strict)).group.group_id
    before = await _snapshot(alice, gid)
    admin_only = {
        "UpdateGroupInfo": pb.UpdateGroupInfoRequest(
            request_id=rid(), group_id=gid, info=groups_pb2.GroupInfo(encrypted_title=b"mine")
        ),
        "UpdateGroupSettings": pb.UpdateGroupSettingsRequest(
            request_id=rid(),
            group_id=gid,
            settings=groups_pb2.GroupSettings(),
            update_mask=field_mask_pb2.FieldMask(paths=["only_admins_edit_info"]),
        ),
        "AddMembers": pb.AddMembersRequest(request_id=rid(), group_id=gid, user_ids=[dave.user_id]),
        "RemoveMembers": pb.RemoveMembersRequest(
            request_id=rid(), group_id=gid, user_ids=[carol.user_id]
        ),
        "UpdateMemberRole": pb.UpdateMemberRoleRequest(
            request_id=rid(), group_id=gid, user_id=bob.user_id, role=ADMIN
        ),
        "BanMembers": pb.BanMembersRequest(
            request_id=rid(), group_id=gid, user_ids=[carol.user_id]
        ),
        "UnbanMembers": pb.UnbanMembersRequest(
            request_id=rid(), group_id=gid, user_ids=[carol.user_id]
        ),
        "ListBannedMembers": pb.ListBannedMembersRequest(group_id=gid),
        "CreateInviteLink": pb.CreateInviteLinkRequest(request_id=rid(), group_id=gid),
        "GetInviteLink": pb.GetInviteLinkRequest(group_id=gid),
        "RevokeInviteLink": pb.RevokeInviteLinkRequest(request_id=rid(), group_id=gid),
        "ListJoinRequests": pb.ListJoinRequestsRequest(group_id=gid),
        "ApproveJoinRequests": pb.ApproveJoinRequestsRequest(
            request_id=rid(), group_id=gid, user_ids=[dave.user_id]
        ),
        "DenyJoinRequests": pb.DenyJoinRequestsRequest(
            request_id=rid(), group_id=gid, user_ids=[dave.user_id]
        ),
    }
    for method, request in admin_only.items():
        await rejected(bob.call(method, request), Code.PERMISSION_DENIED, "NOT_GROUP_ADMIN")
        # A non-member is told it is not a member, whatever it tries.
        await rejected(dave.call(method, request), Code.PERMISSION_DENIED, "NOT_A_MEMBER")
    for method, request in {
        "ListMembers": pb.ListMembersRequest(group_id=gid),
        "GetGroupDevices": pb.GetGroupDevicesRequest(group_id=gid),
        "LeaveGroup": pb.LeaveGroupRequest(request_id=rid(), group_id=gid),
    }.items():
        await rejected(dave.call(method, request), Code.PERMISSION_DENIED, "NOT_A_MEMBER")
    assert await _snapshot(alice, gid) == before
    assert (await alice.get(gid)).info.encrypted_title == b"title"


async def test_members_edit_info_and_add_members_unless_admins_only(people: People) -> None:
    alice, bob, carol = await people(3)
    gid = (await alice.create(bob.user_id)).group.group_id
    updated = await bob.call(
        "UpdateGroupInfo",
        pb.UpdateGroupInfoRequest(
            request_id=rid(), group_id=gid, info=groups_pb2.GroupInfo(encrypted_title=b"bob's")
        ),
    )
    assert updated.group.info.encrypted_title == b"bob's"
    added = await bob.add(gid, carol.user_id)
    assert [(m.user_id, m.added_by_user_id) for m in added.added] == [(carol.user_id, bob.user_id)]


async def test_the_owner_is_protected_and_admins_manage_members(people: People) -> None:
    alice, bob, carol, dave = await people(4)
    gid = (await alice.create(bob.user_id, carol.user_id, dave.user_id)).group.group_id
    promoted = await alice.set_role(gid, bob.user_id, ADMIN)
    assert promoted.member.role == ADMIN
    before = await _snapshot(alice, gid)
    await rejected(bob.remove(gid, alice.user_id), Code.PERMISSION_DENIED, "CANNOT_REMOVE_OWNER")
    await rejected(
        bob.remove(gid, carol.user_id, alice.user_id), Code.PERMISSION_DENIED, "CANNOT_REMOVE_OWNER"
    )
    await rejected(
        bob.call(
            "BanMembers",
            pb.BanMembersRequest(request_id=rid(), group_id=gid, user_ids=[alice.user_id]),
        ),
        Code.PERMISSION_DENIED,
        "CANNOT_REMOVE_OWNER",
    )
    await rejected(
        bob.set_role(gid, alice.user_id, MEMBER), Code.PERMISSION_DENIED, "CANNOT_CHANGE_OWNER_ROLE"
    )
    await rejected(
        alice.set_role(gid, alice.user_id, ADMIN),
        Code.PERMISSION_DENIED,
        "CANNOT_CHANGE_OWNER_ROLE",
    )
    await rejected(
        bob.set_role(gid, carol.user_id, OWNER), Code.PERMISSION_DENIED, "NOT_GROUP_OWNER"
    )
    await rejected(
        bob.set_role(gid, carol.user_id, groups_pb2.GROUP_ROLE_UNSPECIFIED),
        Code.INVALID_ARGUMENT,
        "ROLE_INVALID",
    )
    await rejected(bob.set_role(gid, uuid.uuid4().hex, ADMIN), Code.NOT_FOUND, "MEMBER_NOT_FOUND")
    assert await _snapshot(alice, gid) == before
    # An admin removes members and promotes and demotes admins.
    removed = await bob.remove(gid, carol.user_id, uuid.uuid4().hex)
    assert list(removed.removed_user_ids) == [carol.user_id]
    await bob.set_role(gid, dave.user_id, ADMIN)
    await bob.set_role(gid, dave.user_id, MEMBER)
    assert await alice.members(gid) == {
        alice.user_id: OWNER,
        bob.user_id: ADMIN,
        dave.user_id: MEMBER,
    }
    await rejected(carol.get(gid), Code.PERMISSION_DENIED, "NOT_A_MEMBER")


async def test_the_owner_transfers_ownership(people: People) -> None:
    alice, bob = await people(2)
    gid = (await alice.create(bob.user_id)).group.group_id
    transferred = await alice.set_role(gid, bob.user_id, OWNER)
    assert transferred.member.role == OWNER and transferred.group.caller_role == ADMIN
    assert await alice.members(gid) == {alice.user_id: ADMIN, bob.user_id: OWNER}
    await rejected(alice.remove(gid, bob.user_id), Code.PERMISSION_DENIED, "CANNOT_REMOVE_OWNER")


async def test_leaving_hands_ownership_on_and_the_last_member_deletes_the_group(
    people: People,
) -> None:
    alice, bob, carol = await people(3)
    gid = (await alice.create(bob.user_id, carol.user_id)).group.group_id
    await alice.set_role(gid, carol.user_id, ADMIN)
    left = await alice.call("LeaveGroup", pb.LeaveGroupRequest(request_id=rid(), group_id=gid))
    assert not left.group_deleted
    # Carol is the longest-standing admin (Bob joined as early, but is no admin).
    assert await bob.members(gid) == {bob.user_id: MEMBER, carol.user_id: OWNER}
    assert (await bob.get(gid)).membership_version == left.membership_version
    await rejected(
        alice.call("LeaveGroup", pb.LeaveGroupRequest(request_id=rid(), group_id=gid)),
        Code.PERMISSION_DENIED,
        "NOT_A_MEMBER",
    )
    await carol.call("LeaveGroup", pb.LeaveGroupRequest(request_id=rid(), group_id=gid))
    assert await bob.members(gid) == {bob.user_id: OWNER}
    last = await bob.call("LeaveGroup", pb.LeaveGroupRequest(request_id=rid(), group_id=gid))
    assert last.group_deleted
    await rejected(bob.get(gid), Code.NOT_FOUND, "GROUP_NOT_FOUND")
    mine = await bob.call("ListMyGroups", pb.ListMyGroupsRequest())
    assert list(mine.groups) == []


async def test_repeating_a_request_id_returns_the_first_result_and_changes_nothing(
    people: People,
) -> None:
    alice, bob, carol = await people(3)
    create = pb.CreateGroupRequest(
        request_id=rid(),
        info=groups_pb2.GroupInfo(encrypted_title=b"t"),
        member_user_ids=[bob.user_id],
    )
    first = await alice.call("CreateGroup", create)
    assert await alice.call("CreateGroup", create) == first
    gid = first.group.group_id
    mine = await alice.call("ListMyGroups", pb.ListMyGroupsRequest())
    assert [g.group_id for g in mine.groups] == [gid]

    add = pb.AddMembersRequest(request_id=rid(), group_id=gid, user_ids=[carol.user_id])
    added = await alice.call("AddMembers", add)
    await alice.remove(gid, carol.user_id)
    # The repeat answers as the first time and does not add Carol back.
    assert await alice.call("AddMembers", add) == added
    assert carol.user_id not in await alice.members(gid)

    leave = pb.LeaveGroupRequest(request_id=rid(), group_id=gid)
    left = await bob.call("LeaveGroup", leave)
    assert await bob.call("LeaveGroup", leave) == left
    version = (await alice.get(gid)).membership_version
    assert version == left.membership_version

    # A request id belongs to one call.
    await rejected(
        alice.call(
            "RemoveMembers",
            pb.RemoveMembersRequest(request_id=add.request_id, group_id=gid, user_ids=["x"]),
        ),
        Code.INVALID_ARGUMENT,
        "FIELD_INVALID",
    )


async def test_settings_and_info_checks(people: People) -> None:
    (alice,) = await people(1)
    gid = (await alice.create()).group.group_id
    stale = pb.UpdateGroupInfoRequest(
        request_id=rid(),
        group_id=gid,
        info=groups_pb2.GroupInfo(encrypted_title=b"new"),
        expected_revision=7,
    )
    await rejected(
        alice.call("UpdateGroupInfo", stale), Code.FAILED_PRECONDITION, "REVISION_CONFLICT"
    )
    for paths in ([], ["no_such_setting"]):
        await rejected(
            alice.call(
                "UpdateGroupSettings",
                pb.UpdateGroupSettingsRequest(
                    request_id=rid(),
                    group_id=gid,
                    update_mask=field_mask_pb2.FieldMask(paths=paths),
                ),
            ),
            Code.INVALID_ARGUMENT,
            "UPDATE_MASK_INVALID",
        )
    changed = await alice.call(
        "UpdateGroupSettings",
        pb.UpdateGroupSettingsRequest(
            request_id=rid(),
            group_id=gid,
            settings=groups_pb2.GroupSettings(join_approval_required=True, only_admins_send=True),
            update_mask=field_mask_pb2.FieldMask(paths=["join_approval_required"]),
            expected_revision=1,
        ),
    )
    # Only the masked field changed.
    assert changed.group.settings == groups_pb2.GroupSettings(join_approval_required=True)
    assert (await alice.get(gid)).revision == 2


@pytest.mark.settings(groups={"max_users_per_request": 2, "max_groups_per_user": 2})
async def test_request_and_per_user_limits(people: People) -> None:
    alice, bob, carol, dave = await people(4)
    gid = (await alice.create()).group.group_id
    error = await rejected(
        alice.add(gid, bob.user_id, carol.user_id, dave.user_id),
        Code.INVALID_ARGUMENT,
        "TOO_MANY_USERS",
    )
    assert (limit(error).limit, limit(error).actual) == (2, 3)
    await alice.create()
    error = await rejected(alice.create(), Code.RESOURCE_EXHAUSTED, "TOO_MANY_GROUPS")
    assert limit(error).setting == "groups.max_groups_per_user"
    # Bob is in two groups already: a third cannot take him.
    await bob.create()
    await bob.create()
    added = await alice.add(gid, bob.user_id, carol.user_id)
    assert [m.user_id for m in added.added] == [carol.user_id]
    assert [(f.user_id, f.reason) for f in added.not_added] == [
        (bob.user_id, groups_pb2.ADD_MEMBER_FAILURE_REASON_TOO_MANY_GROUPS)
    ]


async def test_calls_need_a_valid_token(people: People) -> None:
    (alice,) = await people(1)
    alice.account.access_token = "not-a-token"
    error = await rejected(
        alice.call("ListMyGroups", pb.ListMyGroupsRequest()), Code.UNAUTHENTICATED, "TOKEN_INVALID"
    )
    assert error.code == Code.UNAUTHENTICATED
