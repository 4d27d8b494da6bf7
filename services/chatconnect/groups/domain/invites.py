"""Invite links, joining with them, and the join requests of groups that need approval."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

from chatconnect.bus.ports import RateLimiter
from chatconnect.groups.domain.checks import check_user_ids, require_admin
from chatconnect.groups.domain.errors import (
    Banned,
    GroupFull,
    InviteLinkNotFound,
    TooManyGroups,
    TooManyJoinRequests,
)
from chatconnect.groups.domain.models import (
    GroupChange,
    GroupInfo,
    GroupRecord,
    GroupRole,
    GroupState,
    InviteLink,
    JoinRequest,
    Member,
)
from chatconnect.groups.domain.mutations import Decision, Mutations, next_record
from chatconnect.groups.domain.paging import Page, decode_token, page_size, paginate
from chatconnect.groups.domain.results import (
    AddResult,
    DenyResult,
    InviteResult,
    JoinOutcome,
    JoinResult,
)
from chatconnect.runtime.errors import FieldMissing, RateLimited

INVITE_CODE_BYTES = 16
"""128 bits of entropy: codes cannot be guessed."""
DEFAULT_PAGE = 100
MAX_PAGE = 500

_NO_LINK = "no working invite link has this code (it may have been revoked or expired)"


@dataclass(frozen=True)
class InvitePreview:
    """What a user sees of a group before joining with its link."""

    group_id: str
    info: GroupInfo
    member_count: int
    join_approval_required: bool


def _current(record: GroupRecord, code: str, now: float) -> InviteLink:
    """The group's link if `code` is its current, unexpired code."""
    link = record.invite
    if link is None or link.code != code or link.expired(now):
        raise InviteLinkNotFound(_NO_LINK)
    return link


class GroupInvites:
    """Invite links and join requests."""

    def __init__(self, *, mutations: Mutations, limiter: RateLimiter) -> None:
        self._m = mutations
        self._limiter = limiter
        self._config = mutations.config

    # --- the link ------------------------------------------------------------------------

    async def create_link(self, caller: str, *, request_id: str, group_id: str) -> InviteResult:
        """Makes a new invite link, retiring the previous one (admins only)."""

        async def plan(state: GroupState, now: float) -> Decision[InviteResult]:
            require_admin(state, caller)
            ttl = self._config.invite_link_ttl_seconds
            link = InviteLink(
                code=secrets.token_urlsafe(INVITE_CODE_BYTES),
                created_by=caller,
                created_at=now,
                expires_at=now + ttl if ttl > 0 else 0.0,
            )
            old = state.record.invite
            record = next_record(state.record, now, invite=link)
            change = GroupChange(
                state.record.revision, record, retired_invite_code=old.code if old else ""
            )
            return change, InviteResult(
                record.revision, link.code, link.created_by, link.created_at, link.expires_at
            )

        return await self._m.run(
            caller=caller,
            request_id=request_id,
            method="CreateInviteLink",
            kind=InviteResult,
            group_id=group_id,
            plan=plan,
        )

    async def get_link(self, caller: str, *, group_id: str) -> InviteLink:
        """The group's working invite link (admins only)."""
        state = await self._m.load(group_id)
        require_admin(state, caller)
        link = state.record.invite
        if link is None or link.expired(self._m.clock()):
            raise InviteLinkNotFound("the group has no working invite link")
        return link

    async def revoke_link(self, caller: str, *, request_id: str, group_id: str) -> InviteResult:
        """Stops the group's invite link from working (admins only)."""

        async def plan(state: GroupState, now: float) -> Decision[InviteResult]:
            require_admin(state, caller)
            old = state.record.invite
            if old is None:
                raise InviteLinkNotFound("the group has no invite link")
            record = next_record(state.record, now, invite=None)
            change = GroupChange(state.record.revision, record, retired_invite_code=old.code)
            return change, InviteResult(record.revision)

        return await self._m.run(
            caller=caller,
            request_id=request_id,
            method="RevokeInviteLink",
            kind=InviteResult,
            group_id=group_id,
            plan=plan,
        )

    # --- using the link ------------------------------------------------------------------

    async def _throttle(self, caller: str) -> None:
        per_minute = self._config.invite_lookups_per_minute
        decision = await self._limiter.acquire(
            f"groups.invite:{caller}", rate_per_second=per_minute / 60.0, burst=per_minute
        )
        if not decision.allowed:
            raise RateLimited("account", decision.retry_after_seconds)

    async def _group_of(self, code: str) -> str:
        if not code:
            raise FieldMissing("invite_code")
        group_id = await self._m.store.group_for_invite(code)
        if group_id is None:
            raise InviteLinkNotFound(_NO_LINK)
        return group_id

    async def preview(self, caller: str, *, code: str) -> InvitePreview:
        """What the caller would join with this code."""
        await self._throttle(caller)
        group_id = await self._group_of(code)
        record = await self._m.store.record(group_id)
        if record is None:
            raise InviteLinkNotFound(_NO_LINK)
        _current(record, code, self._m.clock())
        if await self._m.store.bans_among(group_id, [caller]):
            raise Banned("you are banned from this group")
        return InvitePreview(
            group_id,
            record.info,
            record.member_count,
            record.settings.join_approval_required,
        )

    async def join(self, caller: str, *, request_id: str, code: str) -> JoinResult:
        """Joins with the code, or files a join request when the group needs approval."""
        replayed = await self._m.replay(caller, request_id, "JoinGroupByInviteLink", JoinResult)
        if replayed is not None:
            return replayed
        await self._throttle(caller)
        group_id = await self._group_of(code)

        async def plan(state: GroupState, now: float) -> Decision[JoinResult]:
            record = state.record
            link = _current(record, code, now)
            if await self._m.store.bans_among(group_id, [caller]):
                raise Banned("you are banned from this group")
            member = state.members.get(caller)
            if member is not None:
                return None, JoinResult(
                    JoinOutcome.ALREADY_MEMBER, self._m.view(record, member.role)
                )
            used = replace(link, use_count=link.use_count + 1)
            if record.settings.join_approval_required:
                return await self._request(caller, state, now, used)
            self._check_room(record, caller, await self._m.store.group_counts([caller]))
            after = next_record(
                record,
                now,
                members_changed=True,
                member_count=record.member_count + 1,
                invite=used,
            )
            joined = Member(caller, GroupRole.MEMBER, "", now)
            return GroupChange(record.revision, after, put_members=(joined,)), JoinResult(
                JoinOutcome.JOINED, self._m.view(after, GroupRole.MEMBER)
            )

        return await self._m.run(
            caller=caller,
            request_id=request_id,
            method="JoinGroupByInviteLink",
            kind=JoinResult,
            group_id=group_id,
            plan=plan,
        )

    async def _request(
        self, caller: str, state: GroupState, now: float, used: InviteLink
    ) -> Decision[JoinResult]:
        """Files the caller's join request, or finds the one already pending."""
        record = state.record
        pending = await self._m.store.join_requests_among(record.group_id, [caller])
        if caller in pending:
            return None, JoinResult(JoinOutcome.REQUESTED, join_request=pending[caller])
        if record.join_request_count >= self._config.max_join_requests:
            raise TooManyJoinRequests(
                "pending join requests",
                setting="groups.max_join_requests",
                limit=self._config.max_join_requests,
                actual=record.join_request_count + 1,
            )
        request = JoinRequest(caller, now)
        after = next_record(
            record, now, join_request_count=record.join_request_count + 1, invite=used
        )
        change = GroupChange(record.revision, after, put_join_requests=(request,))
        return change, JoinResult(JoinOutcome.REQUESTED, join_request=request)

    # --- join requests -------------------------------------------------------------------

    async def list_requests(
        self, caller: str, *, group_id: str, size: int, token: str
    ) -> Page[JoinRequest]:
        """Pending join requests, oldest first (admins only)."""
        size = page_size(size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        after = decode_token("join_requests", token, (float, str))
        require_admin(await self._m.load(group_id), caller)
        requests = await self._m.store.join_requests(group_id)
        return paginate(
            requests,
            listing="join_requests",
            key=lambda r: (r.requested_at, r.user_id),
            after=after,
            size=size,
        )

    async def approve(
        self, caller: str, *, request_id: str, group_id: str, user_ids: Sequence[str]
    ) -> AddResult:
        """Admits the listed requesting users, all or none (admins only). Users already in
        as many groups as they may be stay pending."""
        listed = check_user_ids(user_ids, self._config)

        async def plan(state: GroupState, now: float) -> Decision[AddResult]:
            me = require_admin(state, caller)
            record = state.record
            pending = await self._m.store.join_requests_among(group_id, listed)
            counts = await self._m.store.group_counts(list(pending))
            admitted = [
                u
                for u in listed
                if u in pending and counts.get(u, 0) < self._config.max_groups_per_user
            ]
            if not admitted:
                return None, AddResult(self._m.view(record, me.role))
            if record.member_count + len(admitted) > self._config.max_members:
                raise GroupFull(
                    "group members",
                    setting="groups.max_members",
                    limit=self._config.max_members,
                    actual=record.member_count + len(admitted),
                )
            added = tuple(Member(u, GroupRole.MEMBER, caller, now) for u in admitted)
            after = next_record(
                record,
                now,
                members_changed=True,
                member_count=record.member_count + len(added),
                join_request_count=max(record.join_request_count - len(added), 0),
            )
            change = GroupChange(
                record.revision, after, put_members=added, drop_join_requests=tuple(admitted)
            )
            return change, AddResult(self._m.view(after, me.role), added)

        return await self._m.run(
            caller=caller,
            request_id=request_id,
            method="ApproveJoinRequests",
            kind=AddResult,
            group_id=group_id,
            plan=plan,
        )

    async def deny(
        self, caller: str, *, request_id: str, group_id: str, user_ids: Sequence[str]
    ) -> DenyResult:
        """Turns the listed requesting users away (admins only)."""
        listed = check_user_ids(user_ids, self._config)

        async def plan(state: GroupState, now: float) -> Decision[DenyResult]:
            require_admin(state, caller)
            record = state.record
            pending = await self._m.store.join_requests_among(group_id, listed)
            denied = tuple(u for u in listed if u in pending)
            if not denied:
                return None, DenyResult(())
            after = next_record(
                record, now, join_request_count=max(record.join_request_count - len(denied), 0)
            )
            change = GroupChange(record.revision, after, drop_join_requests=denied)
            return change, DenyResult(denied)

        return await self._m.run(
            caller=caller,
            request_id=request_id,
            method="DenyJoinRequests",
            kind=DenyResult,
            group_id=group_id,
            plan=plan,
        )

    def _check_room(self, record: GroupRecord, user_id: str, counts: dict[str, int]) -> None:
        if record.member_count + 1 > self._config.max_members:
            raise GroupFull(
                "group members",
                setting="groups.max_members",
                limit=self._config.max_members,
                actual=record.member_count + 1,
            )
        mine = counts.get(user_id, 0)
        if mine >= self._config.max_groups_per_user:
            raise TooManyGroups(
                "groups you belong to",
                setting="groups.max_groups_per_user",
                limit=self._config.max_groups_per_user,
                actual=mine + 1,
            )
