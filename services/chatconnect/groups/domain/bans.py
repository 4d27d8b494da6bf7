"""Banning users from a group, lifting bans, and listing them."""

from __future__ import annotations

from collections.abc import Sequence

from chatconnect.groups.domain.checks import check_user_ids, require_admin
from chatconnect.groups.domain.errors import CannotBanSelf, CannotRemoveOwner, TooManyBans
from chatconnect.groups.domain.models import Ban, GroupChange, GroupRole, GroupState
from chatconnect.groups.domain.mutations import Decision, Mutations, next_record
from chatconnect.groups.domain.paging import Page, decode_token, page_size, paginate
from chatconnect.groups.domain.results import BanResult, UnbanResult

DEFAULT_PAGE = 100
MAX_PAGE = 500


class GroupBans:
    """Bans: a banned user is removed, its join request denied, and it cannot come back
    (added or by link) until unbanned."""

    def __init__(self, *, mutations: Mutations) -> None:
        self._m = mutations
        self._config = mutations.config

    async def ban(
        self, caller: str, *, request_id: str, group_id: str, user_ids: Sequence[str]
    ) -> BanResult:
        """Bans the listed users, members or not (admins only; never the owner)."""
        listed = check_user_ids(user_ids, self._config)
        if caller in listed:
            raise CannotBanSelf("you cannot ban yourself; leave the group instead")

        async def plan(state: GroupState, now: float) -> Decision[BanResult]:
            me = require_admin(state, caller)
            if any(state.role_of(u) == GroupRole.OWNER for u in listed):
                raise CannotRemoveOwner("the group owner cannot be banned")
            record = state.record
            existing = await self._m.store.bans_among(group_id, listed)
            new = tuple(Ban(u, caller, now) for u in listed if u not in existing)
            if not new:
                return None, BanResult(self._m.view(record, me.role), tuple(existing.values()))
            if record.ban_count + len(new) > self._config.max_bans:
                raise TooManyBans(
                    "banned users",
                    setting="groups.max_bans",
                    limit=self._config.max_bans,
                    actual=record.ban_count + len(new),
                )
            removed = tuple(u for u in listed if u in state.members)
            requests = await self._m.store.join_requests_among(group_id, listed)
            after = next_record(
                record,
                now,
                members_changed=bool(removed),
                member_count=record.member_count - len(removed),
                ban_count=record.ban_count + len(new),
                join_request_count=max(record.join_request_count - len(requests), 0),
            )
            in_force = {**existing, **{b.user_id: b for b in new}}
            answer = BanResult(self._m.view(after, me.role), tuple(in_force[u] for u in listed))
            change = GroupChange(
                record.revision,
                after,
                drop_members=removed,
                put_bans=new,
                drop_join_requests=tuple(requests),
            )
            return change, answer

        return await self._m.run(
            caller=caller,
            request_id=request_id,
            method="BanMembers",
            kind=BanResult,
            group_id=group_id,
            plan=plan,
        )

    async def unban(
        self, caller: str, *, request_id: str, group_id: str, user_ids: Sequence[str]
    ) -> UnbanResult:
        """Lifts the listed users' bans (admins only)."""
        listed = check_user_ids(user_ids, self._config)

        async def plan(state: GroupState, now: float) -> Decision[UnbanResult]:
            me = require_admin(state, caller)
            existing = await self._m.store.bans_among(group_id, listed)
            lifted = tuple(u for u in listed if u in existing)
            if not lifted:
                return None, UnbanResult(self._m.view(state.record, me.role), ())
            after = next_record(
                state.record, now, ban_count=max(state.record.ban_count - len(lifted), 0)
            )
            answer = UnbanResult(self._m.view(after, me.role), lifted)
            return GroupChange(state.record.revision, after, drop_bans=lifted), answer

        return await self._m.run(
            caller=caller,
            request_id=request_id,
            method="UnbanMembers",
            kind=UnbanResult,
            group_id=group_id,
            plan=plan,
        )

    async def list_bans(self, caller: str, *, group_id: str, size: int, token: str) -> Page[Ban]:
        """The group's bans, newest first (admins only)."""
        size = page_size(size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        after = decode_token("bans", token, (float, str))
        require_admin(await self._m.load(group_id), caller)
        bans = await self._m.store.bans(group_id)
        return paginate(
            bans, listing="bans", key=lambda b: (-b.banned_at, b.user_id), after=after, size=size
        )
