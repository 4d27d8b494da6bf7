"""Storage ports of the groups service."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from chatconnect.groups.domain.models import (
    Ban,
    GroupChange,
    GroupMembership,
    GroupRecord,
    GroupState,
    JoinRequest,
    Member,
    RequestRecord,
)


class GroupDirectory(abc.ABC):
    """Read access to group membership, for the services that enforce it (router,
    presence, devices). Every read goes to the store: a cache may only serve a membership
    while the group is at the revision it was read at (groups/cached_directory.py), or a
    removed member would keep receiving."""

    @abc.abstractmethod
    async def membership_version(self, group_id: str) -> int | None:
        """The group's current membership version; None when there is no such group.
        One small read, so callers may keep a member list keyed by version."""

    @abc.abstractmethod
    async def membership(self, group_id: str) -> GroupMembership | None:
        """Every member with its role, the settings and the membership version, read
        consistently; None when there is no such group."""


class GroupStore(GroupDirectory):
    """Groups, their members, bans, join requests and invite codes, and the results of
    the requests that changed them.

    Every change goes through `commit`, which applies a whole `GroupChange` atomically
    and only if the group is still at the revision the change was computed from; readers
    never see half of a change. Reads return what the last committed change left.
    """

    @abc.abstractmethod
    async def commit(self, change: GroupChange) -> bool:
        """Applies `change` if the group is at `change.base_revision` (for 0: if no group
        has its id); False, changing nothing, when it is not."""

    @abc.abstractmethod
    async def request(self, user_id: str, request_id: str, *, now: float) -> RequestRecord | None:
        """The recorded outcome of the user's request, unless it expired by `now`."""

    @abc.abstractmethod
    async def record(self, group_id: str) -> GroupRecord | None:
        """The group row; None when there is no such group."""

    @abc.abstractmethod
    async def state(self, group_id: str) -> GroupState | None:
        """The group row with every member; None when there is no such group."""

    @abc.abstractmethod
    async def member(self, group_id: str, user_id: str) -> Member | None:
        """One member, or None when the user is not a member."""

    @abc.abstractmethod
    async def group_for_invite(self, invite_code: str) -> str | None:
        """The group whose current invite link has this code."""

    @abc.abstractmethod
    async def bans(self, group_id: str) -> list[Ban]:
        """Every ban of the group, in no particular order."""

    @abc.abstractmethod
    async def bans_among(self, group_id: str, user_ids: Sequence[str]) -> dict[str, Ban]:
        """The bans of those of `user_ids` that are banned."""

    @abc.abstractmethod
    async def join_requests(self, group_id: str) -> list[JoinRequest]:
        """Every pending join request of the group, in no particular order."""

    @abc.abstractmethod
    async def join_requests_among(
        self, group_id: str, user_ids: Sequence[str]
    ) -> dict[str, JoinRequest]:
        """The pending requests of those of `user_ids` that have one."""

    @abc.abstractmethod
    async def groups_of(self, user_id: str) -> list[tuple[GroupRecord, Member]]:
        """Every group the user belongs to, with the user's membership."""

    @abc.abstractmethod
    async def group_counts(self, user_ids: Sequence[str]) -> dict[str, int]:
        """How many groups each user belongs to (0 for none)."""

    @abc.abstractmethod
    async def existing_users(self, user_ids: Sequence[str]) -> set[str]:
        """Those of `user_ids` that have an account."""
