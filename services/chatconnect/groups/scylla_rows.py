"""Rows of the ScyllaDB group store: the group row's static columns, member rows, and the
statements that write a change's rows at its fixed timestamp."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from chatconnect.groups.domain.models import (
    GroupChange,
    GroupInfo,
    GroupRecord,
    GroupRole,
    GroupSettings,
    InviteLink,
    Member,
)
from chatconnect.groups.records import record_values
from chatconnect.storage.cql import Row, Statement, ttl

STATIC_COLUMNS = (
    "created_by",
    "created_at",
    "updated_at",
    "encrypted_title",
    "encrypted_description",
    "avatar_media_id",
    "only_admins_send",
    "only_admins_edit_info",
    "join_approval_required",
    "only_admins_add_members",
    "membership_version",
    "revision",
    "member_count",
    "ban_count",
    "join_request_count",
    "invite_code",
    "invite_created_by",
    "invite_created_at",
    "invite_expires_at",
    "invite_use_count",
    "deleted",
)
"""The group row, as written by every change's LWT (with `pending` and `write_time`)."""

STATICS = ", ".join(("group_id", *STATIC_COLUMNS, "write_time", "pending"))
MEMBER_COLUMNS = "user_id, role, added_by, joined_at"

ROWS_PER_BATCH = 64
"""Rows per single-partition batch: well under Cassandra's batch size failure threshold
(50 KiB) for member, ban and join request rows."""


def now_micros() -> int:
    """The wall clock in microseconds, the unit of CQL write timestamps."""
    return time.time_ns() // 1000


def record_from_row(row: Row) -> GroupRecord:
    """The group row from its static columns."""
    invite = None
    if row["invite_code"] is not None:
        invite = InviteLink(
            code=row["invite_code"],
            created_by=row["invite_created_by"] or "",
            created_at=row["invite_created_at"] or 0.0,
            expires_at=row["invite_expires_at"] or 0.0,
            use_count=row["invite_use_count"] or 0,
        )
    return GroupRecord(
        group_id=row["group_id"],
        created_by=row["created_by"] or "",
        created_at=row["created_at"] or 0.0,
        updated_at=row["updated_at"] or 0.0,
        info=GroupInfo(
            bytes(row["encrypted_title"] or b""),
            bytes(row["encrypted_description"] or b""),
            row["avatar_media_id"] or "",
        ),
        settings=GroupSettings(
            only_admins_send=bool(row["only_admins_send"]),
            only_admins_edit_info=bool(row["only_admins_edit_info"]),
            join_approval_required=bool(row["join_approval_required"]),
            only_admins_add_members=bool(row["only_admins_add_members"]),
        ),
        membership_version=row["membership_version"] or 0,
        revision=row["revision"] or 0,
        member_count=row["member_count"] or 0,
        ban_count=row["ban_count"] or 0,
        join_request_count=row["join_request_count"] or 0,
        invite=invite,
    )


def static_values(record: GroupRecord, *, deleted: bool) -> tuple[Any, ...]:
    """The values of STATIC_COLUMNS for `record`."""
    return (*record_values(record), deleted)


def member_from_row(row: Row) -> Member:
    """A member from its clustering row."""
    return Member(
        row["user_id"], GroupRole(row["role"]), row["added_by"] or "", row["joined_at"] or 0.0
    )


def _chunked(statements: Sequence[Statement]) -> list[list[Statement]]:
    return [
        list(statements[i : i + ROWS_PER_BATCH]) for i in range(0, len(statements), ROWS_PER_BATCH)
    ]


def partition_batches(change: GroupChange, stamp: int) -> list[list[Statement]]:
    """The change's rows in the group's own partitions (members, bans, join requests), as
    single-partition batches; every write at timestamp `stamp`."""
    group_id = change.record.group_id
    members = [
        Statement(
            "DELETE FROM groups USING TIMESTAMP ? WHERE group_id = ? AND user_id = ?",
            (stamp, group_id, user_id),
        )
        for user_id in change.drop_members
    ] + [
        Statement(
            "INSERT INTO groups (group_id, user_id, role, added_by, joined_at) "
            "VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?",
            (group_id, m.user_id, int(m.role), m.added_by, m.joined_at, stamp),
        )
        for m in change.put_members
    ]
    bans = [
        Statement(
            "DELETE FROM group_bans USING TIMESTAMP ? WHERE group_id = ? AND user_id = ?",
            (stamp, group_id, user_id),
        )
        for user_id in change.drop_bans
    ] + [
        Statement(
            "INSERT INTO group_bans (group_id, user_id, banned_by, banned_at) "
            "VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
            (group_id, b.user_id, b.banned_by, b.banned_at, stamp),
        )
        for b in change.put_bans
    ]
    requests = [
        Statement(
            "DELETE FROM group_join_requests USING TIMESTAMP ? WHERE group_id = ? AND user_id = ?",
            (stamp, group_id, user_id),
        )
        for user_id in change.drop_join_requests
    ] + [
        Statement(
            "INSERT INTO group_join_requests (group_id, user_id, requested_at) "
            "VALUES (?, ?, ?) USING TIMESTAMP ?",
            (group_id, r.user_id, r.requested_at, stamp),
        )
        for r in change.put_join_requests
    ]
    if change.delete_group:
        bans = [
            Statement(
                "DELETE FROM group_bans USING TIMESTAMP ? WHERE group_id = ?", (stamp, group_id)
            )
        ]
        requests = [
            Statement(
                "DELETE FROM group_join_requests USING TIMESTAMP ? WHERE group_id = ?",
                (stamp, group_id),
            )
        ]
    return [*_chunked(members), *_chunked(bans), *_chunked(requests)]


def single_writes(change: GroupChange, stamp: int) -> list[Statement]:
    """The change's rows in other partitions: each member's side of the membership, the
    invite code lookup and the request's answer."""
    group_id = change.record.group_id
    writes = [
        Statement(
            "DELETE FROM user_groups USING TIMESTAMP ? WHERE user_id = ? AND group_id = ?",
            (stamp, user_id, group_id),
        )
        for user_id in change.drop_members
    ] + [
        Statement(
            "INSERT INTO user_groups (user_id, group_id, joined_at) VALUES (?, ?, ?) "
            "USING TIMESTAMP ?",
            (m.user_id, group_id, m.joined_at, stamp),
        )
        for m in change.put_members
    ]
    invite = change.record.invite
    if change.retired_invite_code and not (invite and invite.code == change.retired_invite_code):
        writes.append(
            Statement(
                "DELETE FROM group_invites USING TIMESTAMP ? WHERE invite_code = ?",
                (stamp, change.retired_invite_code),
            )
        )
    if invite is not None and change.delete_group:
        writes.append(
            Statement(
                "DELETE FROM group_invites USING TIMESTAMP ? WHERE invite_code = ?",
                (stamp, invite.code),
            )
        )
    elif invite is not None:
        writes.append(
            Statement(
                "INSERT INTO group_invites (invite_code, group_id) VALUES (?, ?) USING TIMESTAMP ?",
                (invite.code, group_id, stamp),
            )
        )
    request = change.request
    if request is not None:
        writes.append(
            Statement(
                "INSERT INTO group_requests (user_id, request_id, method, result, expires_at) "
                "VALUES (?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?",
                (
                    request.user_id,
                    request.request_id,
                    request.method,
                    request.result,
                    request.expires_at,
                    ttl(request.expires_at - time.time()),
                    stamp,
                ),
            )
        )
    return writes
