"""Reading groups: one group, its members, the caller's groups, and the devices a group
message is encrypted for."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.devices.domain.models import DeviceRecord
from chatconnect.devices.ports import DeviceDirectory
from chatconnect.groups.domain.checks import check_group_id, membership_of
from chatconnect.groups.domain.errors import GroupNotFound, MembershipVersionStale, NotAMember
from chatconnect.groups.domain.models import GroupRole, Member
from chatconnect.groups.domain.mutations import Mutations
from chatconnect.groups.domain.paging import Page, decode_token, page_size, paginate
from chatconnect.groups.domain.results import GroupView
from chatconnect.model import DeviceAddress

DEFAULT_MEMBERS_PAGE = 256
MAX_MEMBERS_PAGE = 1024
DEFAULT_GROUPS_PAGE = 100
MAX_GROUPS_PAGE = 500

_RANK = {GroupRole.OWNER: 0, GroupRole.ADMIN: 1}


def _member_order(member: Member) -> tuple[int, float, str]:
    """Owner first, then admins, then members; each by join time."""
    return (_RANK.get(member.role, 2), member.joined_at, member.user_id)


@dataclass(frozen=True)
class MemberPage:
    """A page of members and the membership version it reflects."""

    members: list[Member]
    membership_version: int
    next_token: str


@dataclass(frozen=True)
class DevicesPage:
    """A page of members' devices, bound to one membership version."""

    members: list[tuple[str, list[DeviceRecord]]]
    membership_version: int
    next_token: str


class GroupQueries:
    """Read-only calls."""

    def __init__(self, *, mutations: Mutations, devices: DeviceDirectory) -> None:
        self._m = mutations
        self._devices = devices

    async def get(self, caller: str, *, group_id: str) -> GroupView:
        """A group the caller belongs to."""
        check_group_id(group_id)
        record = await self._m.store.record(group_id)
        if record is None:
            raise GroupNotFound(f"no group {group_id}")
        member = await self._m.store.member(group_id, caller)
        if member is None:
            raise NotAMember("you are not a member of this group")
        return self._m.view(record, member.role)

    async def members(self, caller: str, *, group_id: str, size: int, token: str) -> MemberPage:
        """The group's members, owner first, then admins, then members by join time."""
        size = page_size(size, default=DEFAULT_MEMBERS_PAGE, maximum=MAX_MEMBERS_PAGE)
        after = decode_token("members", token, (int, float, str))
        state = await self._m.load(group_id)
        membership_of(state, caller)
        page = paginate(
            list(state.members.values()),
            listing="members",
            key=_member_order,
            after=after,
            size=size,
        )
        return MemberPage(page.items, state.record.membership_version, page.next_token)

    async def my_groups(self, caller: str, *, size: int, token: str) -> Page[GroupView]:
        """The caller's groups, most recently changed first."""
        size = page_size(size, default=DEFAULT_GROUPS_PAGE, maximum=MAX_GROUPS_PAGE)
        after = decode_token("my_groups", token, (float, str))
        views = [self._m.view(r, m.role) for r, m in await self._m.store.groups_of(caller)]
        return paginate(
            views,
            listing="my_groups",
            key=lambda v: (-v.record.updated_at, v.record.group_id),
            after=after,
            size=size,
        )

    async def devices(
        self, caller: DeviceAddress, *, group_id: str, size: int, token: str
    ) -> DevicesPage:
        """Every device of every member but the calling one, a page of members at a time;
        every page is of the membership version of the first."""
        size = page_size(size, default=DEFAULT_MEMBERS_PAGE, maximum=MAX_MEMBERS_PAGE)
        after = decode_token("devices", token, (int, str))
        state = await self._m.load(group_id)
        membership_of(state, caller.user_id)
        version = state.record.membership_version
        if after is not None and after[0] != version:
            raise MembershipVersionStale(group_id, requested=int(after[0]), current=version)
        page = paginate(
            sorted(state.members),
            listing="devices",
            key=lambda user_id: (version, user_id),
            after=after,
            size=size,
        )
        # One bulk read for the page, not one per member.
        listed = await self._devices.list_devices_of(page.items)
        members = [
            (
                user_id,
                [
                    d
                    for d in listed.get(user_id, [])
                    if not (user_id == caller.user_id and d.device_id == caller.device_id)
                ],
            )
            for user_id in page.items
        ]
        return DevicesPage(members, version, page.next_token)
