"""How a group's own row is stored, shared by both GroupStore adapters (their group
columns are in the same order)."""

from __future__ import annotations

from typing import Any

from chatconnect.groups.domain.models import GroupRecord


def record_values(record: GroupRecord) -> tuple[Any, ...]:
    """The group's columns after its id: creation, info, settings, versions, counts and
    the invite link."""
    invite = record.invite
    settings = record.settings
    return (
        record.created_by,
        record.created_at,
        record.updated_at,
        record.info.encrypted_title,
        record.info.encrypted_description,
        record.info.avatar_media_id,
        settings.only_admins_send,
        settings.only_admins_edit_info,
        settings.join_approval_required,
        settings.only_admins_add_members,
        record.membership_version,
        record.revision,
        record.member_count,
        record.ban_count,
        record.join_request_count,
        invite.code if invite else None,
        invite.created_by if invite else None,
        invite.created_at if invite else None,
        invite.expires_at if invite else None,
        invite.use_count if invite else 0,
    )
