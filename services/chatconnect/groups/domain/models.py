"""Groups as the services see them: members with roles, settings, membership versions."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class GroupRole(enum.IntEnum):
    """A member's role (chatconnect.groups.v1.GroupRole). Higher outranks lower."""

    UNSPECIFIED = 0
    MEMBER = 1
    ADMIN = 2
    OWNER = 3

    @property
    def is_admin(self) -> bool:
        """Admins and the owner hold admin powers."""
        return self >= GroupRole.ADMIN


@dataclass(frozen=True)
class GroupSettings:
    """What admins control (chatconnect.groups.v1.GroupSettings)."""

    only_admins_send: bool = False
    only_admins_edit_info: bool = False
    join_approval_required: bool = False
    only_admins_add_members: bool = False


@dataclass(frozen=True)
class GroupMembership:
    """Who is in a group at one membership version: what the send path, typing and
    delete-for-everyone check against. Read from the store on every use, never cached
    across membership versions, so a removal takes effect at once."""

    group_id: str
    membership_version: int
    settings: GroupSettings
    roles: dict[str, GroupRole]
    """Member user id -> role, for every current member."""

    def role_of(self, user_id: str) -> GroupRole | None:
        """The member's role, or None when `user_id` is not a member."""
        return self.roles.get(user_id)

    @property
    def member_ids(self) -> list[str]:
        """Every member, in a stable order."""
        return sorted(self.roles)
