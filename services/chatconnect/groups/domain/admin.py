"""Creating groups and changing their info, settings, members and roles."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from chatconnect.bus.ports import RateLimiter
from chatconnect.groups.domain.checks import (
    check_group_id,
    check_info,
    check_user_ids,
    may_add_members,
    membership_of,
    require_admin,
    successor,
)
from chatconnect.groups.domain.errors import (
    CannotChangeOwnerRole,
    CannotRemoveOwner,
    GroupFull,
    MemberNotFound,
    NotAMember,
    NotGroupAdmin,
    NotGroupOwner,
    RevisionConflict,
    RoleInvalid,
    TooManyGroups,
    UpdateMaskInvalid,
)
from chatconnect.groups.domain.models import (
    GroupChange,
    GroupInfo,
    GroupRecord,
    GroupRole,
    GroupSettings,
    GroupState,
    Member,
)
from chatconnect.groups.domain.mutations import Decision, Mutations, group_id_for, next_record
from chatconnect.groups.domain.results import (
    AddResult,
    GroupResult,
    LeaveResult,
    RemoveResult,
    RoleResult,
)
from chatconnect.groups.domain.screening import Screening
from chatconnect.runtime.errors import FieldMissing, RateLimited

SETTINGS_FIELDS = frozenset(f.name for f in dataclasses.fields(GroupSettings))


def _check_full(record: GroupRecord, adding: int, max_members: int) -> None:
    if record.member_count + adding > max_members:
        raise GroupFull(
            "group members",
            setting="groups.max_members",
            limit=max_members,
            actual=record.member_count + adding,
        )


def _check_revision(state: GroupState, expected: int) -> None:
    if expected and expected != state.record.revision:
        raise RevisionConflict(
            f"the group is at revision {state.record.revision}, not {expected}; "
            "refresh it with GetGroup"
        )


class GroupAdmin:
    """Group creation and membership management."""

    def __init__(self, *, mutations: Mutations, screening: Screening, limiter: RateLimiter) -> None:
        self._m = mutations
        self._screening = screening
        self._limiter = limiter
        self._config = mutations.config

    # --- create --------------------------------------------------------------------------

    async def create(
        self,
        caller: str,
        *,
        request_id: str,
        info: GroupInfo,
        settings: GroupSettings,
        member_ids: Sequence[str],
    ) -> AddResult:
        """Creates a group owned by the caller, with whichever listed users can be added."""
        replayed = await self._m.replay(caller, request_id, "CreateGroup", AddResult)
        if replayed is not None:
            return replayed
        if not info.encrypted_title:
            raise FieldMissing("info.encrypted_title")
        check_info(info, self._config)
        invited = [u for u in dict.fromkeys(member_ids) if u != caller]
        if any(not u for u in invited):
            raise FieldMissing("member_user_ids")
        _check_full(_empty_record(), 1 + len(invited), self._config.max_members)
        decision = await self._limiter.acquire(
            f"groups.create:{caller}",
            rate_per_second=self._config.groups_created_per_hour / 3600.0,
            burst=self._config.groups_created_per_hour,
        )
        if not decision.allowed:
            raise RateLimited("account", decision.retry_after_seconds)
        mine = (await self._m.store.group_counts([caller])).get(caller, 0)
        if mine >= self._config.max_groups_per_user:
            raise TooManyGroups(
                "groups you belong to",
                setting="groups.max_groups_per_user",
                limit=self._config.max_groups_per_user,
                actual=mine + 1,
            )
        addable, failures = await self._screening.screen(caller, invited, group_id=None)
        now = self._m.clock()
        group_id = group_id_for(caller, request_id)
        members = (
            Member(caller, GroupRole.OWNER, "", now),
            *(Member(u, GroupRole.MEMBER, caller, now) for u in addable),
        )
        record = GroupRecord(
            group_id=group_id,
            created_by=caller,
            created_at=now,
            updated_at=now,
            info=info,
            settings=settings,
            membership_version=1,
            revision=1,
            member_count=len(members),
        )
        answer = AddResult(
            group=self._m.view(record, GroupRole.OWNER),
            added=members[1:],
            not_added=tuple(failures),
        )
        change = GroupChange(base_revision=0, record=record, put_members=members)
        return await self._m.create(
            caller=caller,
            request_id=request_id,
            method="CreateGroup",
            kind=AddResult,
            change=change,
            answer=answer,
        )

    # --- info and settings ---------------------------------------------------------------

    async def update_info(
        self,
        caller: str,
        *,
        request_id: str,
        group_id: str,
        info: GroupInfo,
        expected_revision: int,
    ) -> GroupResult:
        """Replaces the encrypted info (admins only when only_admins_edit_info)."""
        check_info(info, self._config)

        async def plan(state: GroupState, now: float) -> Decision[GroupResult]:
            member = membership_of(state, caller)
            if state.record.settings.only_admins_edit_info and not member.role.is_admin:
                raise NotGroupAdmin("only group admins can edit this group's info")
            _check_revision(state, expected_revision)
            record = next_record(state.record, now, info=info)
            return GroupChange(state.record.revision, record), GroupResult(
                self._m.view(record, member.role)
            )

        return await self._m.run(
            caller=caller,
            request_id=request_id,
            method="UpdateGroupInfo",
            kind=GroupResult,
            group_id=group_id,
            plan=plan,
        )

    async def update_settings(
        self,
        caller: str,
        *,
        request_id: str,
        group_id: str,
        values: Mapping[str, bool],
        expected_revision: int,
    ) -> GroupResult:
        """Changes the named settings (admins only)."""
        if not values:
            raise UpdateMaskInvalid("update_mask must name at least one setting")
        unknown = sorted(set(values) - SETTINGS_FIELDS)
        if unknown:
            raise UpdateMaskInvalid(f"GroupSettings has no field {unknown[0]!r}")

        async def plan(state: GroupState, now: float) -> Decision[GroupResult]:
            member = require_admin(state, caller)
            _check_revision(state, expected_revision)
            settings = dataclasses.replace(state.record.settings, **values)
            record = next_record(state.record, now, settings=settings)
            return GroupChange(state.record.revision, record), GroupResult(
                self._m.view(record, member.role)
            )

        return await self._m.run(
            caller=caller,
            request_id=request_id,
            method="UpdateGroupSettings",
            kind=GroupResult,
            group_id=group_id,
            plan=plan,
        )

    # --- members -------------------------------------------------------------------------

    async def add_members(
        self, caller: str, *, request_id: str, group_id: str, user_ids: Sequence[str]
    ) -> AddResult:
        """Adds every addable listed user, or none when the group would overflow."""
        listed = check_user_ids(user_ids, self._config)
        check_group_id(group_id)

        async def plan(state: GroupState, now: float) -> Decision[AddResult]:
            may_add_members(state, caller)
            role = state.members[caller].role
            newcomers = [u for u in listed if u not in state.members]
            addable, failures = await self._screening.screen(caller, newcomers, group_id=group_id)
            if not addable:
                return None, AddResult(self._m.view(state.record, role), (), tuple(failures))
            _check_full(state.record, len(addable), self._config.max_members)
            added = tuple(Member(u, GroupRole.MEMBER, caller, now) for u in addable)
            record = next_record(
                state.record,
                now,
                members_changed=True,
                member_count=state.record.member_count + len(added),
            )
            answer = AddResult(self._m.view(record, role), added, tuple(failures))
            return GroupChange(state.record.revision, record, put_members=added), answer

        return await self._m.run(
            caller=caller,
            request_id=request_id,
            method="AddMembers",
            kind=AddResult,
            group_id=group_id,
            plan=plan,
        )

    async def remove_members(
        self, caller: str, *, request_id: str, group_id: str, user_ids: Sequence[str]
    ) -> RemoveResult:
        """Removes the listed members (admins only; never the owner)."""
        listed = check_user_ids(user_ids, self._config)

        async def plan(state: GroupState, now: float) -> Decision[RemoveResult]:
            member = require_admin(state, caller)
            removed = tuple(u for u in listed if u in state.members)
            if any(state.members[u].role == GroupRole.OWNER for u in removed):
                raise CannotRemoveOwner("the group owner cannot be removed")
            if not removed:
                return None, RemoveResult(self._m.view(state.record, member.role), ())
            record = next_record(
                state.record,
                now,
                members_changed=True,
                member_count=state.record.member_count - len(removed),
            )
            role = GroupRole.UNSPECIFIED if caller in removed else member.role
            answer = RemoveResult(self._m.view(record, role), removed)
            return GroupChange(state.record.revision, record, drop_members=removed), answer

        return await self._m.run(
            caller=caller,
            request_id=request_id,
            method="RemoveMembers",
            kind=RemoveResult,
            group_id=group_id,
            plan=plan,
        )

    async def leave(self, caller: str, *, request_id: str, group_id: str) -> LeaveResult:
        """Leaves the group (handing ownership on) or withdraws a pending join request."""

        async def plan(state: GroupState, now: float) -> Decision[LeaveResult]:
            record = state.record
            member = state.members.get(caller)
            if member is None:
                pending = await self._m.store.join_requests_among(group_id, [caller])
                if not pending:
                    raise NotAMember("you are not a member of this group")
                withdrawn = next_record(
                    record, now, join_request_count=max(record.join_request_count - 1, 0)
                )
                return GroupChange(
                    record.revision, withdrawn, drop_join_requests=(caller,)
                ), LeaveResult(withdrawn.membership_version, withdrawn.revision, False)
            after = next_record(
                record, now, members_changed=True, member_count=record.member_count - 1
            )
            if record.member_count <= 1:
                change = GroupChange(
                    record.revision, after, delete_group=True, drop_members=(caller,)
                )
                return change, LeaveResult(after.membership_version, after.revision, True)
            heir: tuple[Member, ...] = ()
            if member.role == GroupRole.OWNER:
                others = [m for m in state.members.values() if m.user_id != caller]
                chosen = successor(others)
                assert chosen is not None  # the group has another member
                heir = (dataclasses.replace(chosen, role=GroupRole.OWNER),)
            change = GroupChange(record.revision, after, put_members=heir, drop_members=(caller,))
            return change, LeaveResult(after.membership_version, after.revision, False)

        return await self._m.run(
            caller=caller,
            request_id=request_id,
            method="LeaveGroup",
            kind=LeaveResult,
            group_id=group_id,
            plan=plan,
        )

    async def update_role(
        self, caller: str, *, request_id: str, group_id: str, user_id: str, role: GroupRole
    ) -> RoleResult:
        """Promotes or demotes a member; granting OWNER transfers ownership."""
        if role not in (GroupRole.MEMBER, GroupRole.ADMIN, GroupRole.OWNER):
            raise RoleInvalid("role must be MEMBER, ADMIN or OWNER")
        if not user_id:
            raise FieldMissing("user_id")

        async def plan(state: GroupState, now: float) -> Decision[RoleResult]:
            me = require_admin(state, caller)
            target = state.members.get(user_id)
            if target is None:
                raise MemberNotFound(f"{user_id} is not a member of this group")
            if target.role == role:
                return None, RoleResult(self._m.view(state.record, me.role), target)
            if target.role == GroupRole.OWNER:
                raise CannotChangeOwnerRole(
                    "the owner's role changes only by transferring ownership"
                )
            changed = dataclasses.replace(target, role=role)
            put: tuple[Member, ...] = (changed,)
            my_role = me.role
            if role == GroupRole.OWNER:
                if me.role != GroupRole.OWNER:
                    raise NotGroupOwner("only the owner can transfer ownership")
                my_role = GroupRole.ADMIN
                put = (changed, dataclasses.replace(me, role=GroupRole.ADMIN))
            record = next_record(state.record, now)
            answer = RoleResult(self._m.view(record, my_role), changed)
            return GroupChange(state.record.revision, record, put_members=put), answer

        return await self._m.run(
            caller=caller,
            request_id=request_id,
            method="UpdateMemberRole",
            kind=RoleResult,
            group_id=group_id,
            plan=plan,
        )


def _empty_record() -> GroupRecord:
    """A group with no members, for checking a new group's size."""
    return GroupRecord("", "", 0.0, 0.0, GroupInfo(), GroupSettings(), 0, 0, 0)
