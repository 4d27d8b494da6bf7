"""Groups as the services see them: members with roles, settings, membership versions."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


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
    delete-for-everyone check against. Checked against the store on every use, never used
    past the group revision it was read at, so a removal takes effect at once."""

    group_id: str
    membership_version: int
    settings: GroupSettings
    roles: dict[str, GroupRole]
    """Member user id -> role, for every current member."""
    joined_at: dict[str, float] = field(default_factory=dict)
    """Member user id -> when the member joined (seconds since the epoch), for every
    current member: a member reads a large group's log only from there on."""

    def role_of(self, user_id: str) -> GroupRole | None:
        """The member's role, or None when `user_id` is not a member."""
        return self.roles.get(user_id)

    @property
    def member_ids(self) -> list[str]:
        """Every member, in a stable order."""
        return sorted(self.roles)


@dataclass(frozen=True)
class GroupInfo:
    """The descriptive fields, encrypted by the members' clients (opaque here)."""

    encrypted_title: bytes = b""
    encrypted_description: bytes = b""
    avatar_media_id: str = ""


@dataclass(frozen=True)
class InviteLink:
    """A group's current invite link."""

    code: str
    created_by: str
    created_at: float
    expires_at: float
    """0 when the link works until revoked."""
    use_count: int = 0

    def expired(self, now: float) -> bool:
        """Whether the link has stopped working by `now`."""
        return self.expires_at > 0 and now >= self.expires_at


@dataclass(frozen=True)
class GroupRecord:
    """The group row: everything but the members, bans and join requests."""

    group_id: str
    created_by: str
    created_at: float
    updated_at: float
    info: GroupInfo
    settings: GroupSettings
    membership_version: int
    revision: int
    member_count: int
    ban_count: int = 0
    join_request_count: int = 0
    invite: InviteLink | None = None


@dataclass(frozen=True)
class Member:
    """One member of a group."""

    user_id: str
    role: GroupRole
    added_by: str
    """Who added or approved the member; "" for the creator and for joins by link."""
    joined_at: float


@dataclass(frozen=True)
class Ban:
    """A user banned from a group."""

    user_id: str
    banned_by: str
    banned_at: float


@dataclass(frozen=True)
class JoinRequest:
    """A pending request to join with the invite link."""

    user_id: str
    requested_at: float


@dataclass(frozen=True)
class GroupState:
    """A group with all its members, as one revision left it."""

    record: GroupRecord
    members: dict[str, Member]

    def role_of(self, user_id: str) -> GroupRole | None:
        """The member's role, or None when `user_id` is not a member."""
        member = self.members.get(user_id)
        return member.role if member else None

    @property
    def owner(self) -> Member | None:
        """The owner (exactly one in every stored group)."""
        return next((m for m in self.members.values() if m.role == GroupRole.OWNER), None)

    def membership(self) -> GroupMembership:
        """The send path's view of this state."""
        return GroupMembership(
            group_id=self.record.group_id,
            membership_version=self.record.membership_version,
            settings=self.record.settings,
            roles={m.user_id: m.role for m in self.members.values()},
        )


@dataclass(frozen=True)
class RequestRecord:
    """The outcome of one mutating request, kept so a retry returns it again."""

    user_id: str
    request_id: str
    method: str
    result: str
    """The encoded result (groups.domain.results)."""
    expires_at: float
    """When a retry stops getting this answer back (groups.request_id_ttl_seconds)."""


@dataclass(frozen=True)
class GroupChange:
    """One atomic change of a group: the new group row, the rows it adds and removes, and
    the request it answers. Stores apply it only while the group is still at
    `base_revision` (0: the group must not exist yet), so concurrent changes serialize."""

    base_revision: int
    record: GroupRecord
    delete_group: bool = False
    """The last member left: the group and everything in it goes."""
    put_members: tuple[Member, ...] = ()
    drop_members: tuple[str, ...] = ()
    put_bans: tuple[Ban, ...] = ()
    drop_bans: tuple[str, ...] = ()
    put_join_requests: tuple[JoinRequest, ...] = ()
    drop_join_requests: tuple[str, ...] = ()
    retired_invite_code: str = ""
    """An invite code that stops working with this change ("" for none)."""
    request: RequestRecord | None = None
