"""Input checks and permission rules shared by the groups operations."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from chatconnect.groups.config import GroupsConfig
from chatconnect.groups.domain.errors import (
    GroupIdInvalid,
    InfoTooLarge,
    NotAMember,
    NotGroupAdmin,
    TooManyUsers,
)
from chatconnect.groups.domain.models import GroupInfo, GroupRole, GroupState, Member
from chatconnect.runtime.errors import FieldInvalid

MAX_MEDIA_ID_LENGTH = 128


def check_group_id(group_id: str) -> None:
    """Group ids are UUIDs chosen by the server."""
    try:
        uuid.UUID(group_id)
    except ValueError:
        raise GroupIdInvalid(f"{group_id!r} is not a group id") from None


def check_info(info: GroupInfo, config: GroupsConfig) -> None:
    """The encrypted title and description fit groups.max_info_bytes."""
    for name, value in (
        ("encrypted_title", info.encrypted_title),
        ("encrypted_description", info.encrypted_description),
    ):
        if len(value) > config.max_info_bytes:
            raise InfoTooLarge(
                f"info.{name}",
                setting="groups.max_info_bytes",
                limit=config.max_info_bytes,
                actual=len(value),
            )
    if len(info.avatar_media_id) > MAX_MEDIA_ID_LENGTH:
        raise FieldInvalid("info.avatar_media_id", f"at most {MAX_MEDIA_ID_LENGTH} characters")


def check_user_ids(user_ids: Sequence[str], config: GroupsConfig) -> list[str]:
    """The named users, each once in the order given, within the per-request limit."""
    unique = list(dict.fromkeys(user_ids))
    if any(not u for u in unique):
        raise FieldInvalid("user_ids", "must not contain an empty user id")
    if len(unique) > config.max_users_per_request:
        raise TooManyUsers(
            "user_ids",
            setting="groups.max_users_per_request",
            limit=config.max_users_per_request,
            actual=len(unique),
        )
    return unique


def membership_of(state: GroupState, user_id: str) -> Member:
    """The caller's membership; NotAMember when there is none."""
    member = state.members.get(user_id)
    if member is None:
        raise NotAMember("you are not a member of this group")
    return member


def require_admin(state: GroupState, user_id: str) -> Member:
    """The caller's membership, which must hold admin powers."""
    member = membership_of(state, user_id)
    if not member.role.is_admin:
        raise NotGroupAdmin("only group admins can do this")
    return member


def may_add_members(state: GroupState, user_id: str) -> None:
    """Every member may add members unless only admins may."""
    member = membership_of(state, user_id)
    if state.record.settings.only_admins_add_members and not member.role.is_admin:
        raise NotGroupAdmin("only group admins can add members to this group")


def successor(members: Sequence[Member]) -> Member | None:
    """Who becomes owner when the owner leaves: the longest-standing admin, else the
    longest-standing member."""
    by_tenure = sorted(members, key=lambda m: (m.joined_at, m.user_id))
    admins = [m for m in by_tenure if m.role == GroupRole.ADMIN]
    chosen = admins or by_tenure
    return chosen[0] if chosen else None
