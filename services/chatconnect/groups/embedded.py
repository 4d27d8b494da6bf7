"""The embedded (SQLite) group store.

A change is one write transaction: the group row is updated only if it is still at the
change's base revision, and the member, ban and join-request rows and the request's
answer are written in the same transaction, so readers (on the reader connection, which
sees only committed data) see a change whole or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from chatconnect.groups.domain.models import (
    Ban,
    GroupChange,
    GroupInfo,
    GroupMembership,
    GroupRecord,
    GroupRole,
    GroupSettings,
    GroupState,
    InviteLink,
    JoinRequest,
    Member,
    RequestRecord,
)
from chatconnect.groups.ports import GroupStore
from chatconnect.groups.records import record_values
from chatconnect.storage.sqlite import Database, Row, Transaction

_RECORD_COLUMNS = (
    "group_id, created_by, created_at, updated_at, encrypted_title, encrypted_description, "
    "avatar_media_id, only_admins_send, only_admins_edit_info, join_approval_required, "
    "only_admins_add_members, membership_version, revision, member_count, ban_count, "
    "join_request_count, invite_code, invite_created_by, invite_created_at, "
    "invite_expires_at, invite_use_count"
)
_PLACEHOLDERS = ", ".join("?" for _ in _RECORD_COLUMNS.split(","))
_MAX_PARAMS = 500
"""Users per IN (...) query, below SQLite's bound-parameter limit."""
_EXPIRED_PER_CHANGE = 100


def _record(row: Row) -> GroupRecord:
    invite = None
    if row["invite_code"] is not None:
        invite = InviteLink(
            code=row["invite_code"],
            created_by=row["invite_created_by"],
            created_at=row["invite_created_at"],
            expires_at=row["invite_expires_at"],
            use_count=row["invite_use_count"],
        )
    return GroupRecord(
        group_id=row["group_id"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        info=GroupInfo(
            bytes(row["encrypted_title"]),
            bytes(row["encrypted_description"]),
            row["avatar_media_id"],
        ),
        settings=_settings(row),
        membership_version=row["membership_version"],
        revision=row["revision"],
        member_count=row["member_count"],
        ban_count=row["ban_count"],
        join_request_count=row["join_request_count"],
        invite=invite,
    )


def _settings(row: Row) -> GroupSettings:
    return GroupSettings(
        only_admins_send=bool(row["only_admins_send"]),
        only_admins_edit_info=bool(row["only_admins_edit_info"]),
        join_approval_required=bool(row["join_approval_required"]),
        only_admins_add_members=bool(row["only_admins_add_members"]),
    )


def _record_values(record: GroupRecord) -> tuple[Any, ...]:
    return (record.group_id, *record_values(record))


def _member(row: Row) -> Member:
    return Member(row["user_id"], GroupRole(row["role"]), row["added_by"], row["joined_at"])


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + _MAX_PARAMS] for i in range(0, len(items), _MAX_PARAMS)]


def _marks(items: Sequence[str]) -> str:
    return ", ".join("?" for _ in items)


class SqliteGroupStore(GroupStore):
    """Groups in the embedded database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- the send path's reads -----------------------------------------------------------

    async def membership_version(self, group_id: str) -> int | None:
        row = await self._db.fetchone(
            "group_membership_version",
            "SELECT membership_version FROM groups WHERE group_id = ?",
            (group_id,),
        )
        return int(row["membership_version"]) if row else None

    async def membership(self, group_id: str) -> GroupMembership | None:
        state = await self.state(group_id)
        return state.membership() if state else None

    # --- reads ---------------------------------------------------------------------------

    async def record(self, group_id: str) -> GroupRecord | None:
        row = await self._db.fetchone(
            "group_record", f"SELECT {_RECORD_COLUMNS} FROM groups WHERE group_id = ?", (group_id,)
        )
        return _record(row) if row else None

    async def state(self, group_id: str) -> GroupState | None:
        # One statement, so the row and the members come from one snapshot.
        rows = await self._db.fetchall(
            "group_state",
            f"SELECT g.{_RECORD_COLUMNS.replace(', ', ', g.')}, m.user_id AS member_id, "
            "m.role, m.added_by, m.joined_at FROM groups g "
            "LEFT JOIN group_members m ON m.group_id = g.group_id WHERE g.group_id = ?",
            (group_id,),
        )
        if not rows:
            return None
        members = {
            r["member_id"]: Member(
                r["member_id"], GroupRole(r["role"]), r["added_by"], r["joined_at"]
            )
            for r in rows
            if r["member_id"] is not None
        }
        return GroupState(_record(rows[0]), members)

    async def member(self, group_id: str, user_id: str) -> Member | None:
        row = await self._db.fetchone(
            "group_member",
            "SELECT * FROM group_members WHERE group_id = ? AND user_id = ?",
            (group_id, user_id),
        )
        return _member(row) if row else None

    async def group_for_invite(self, invite_code: str) -> str | None:
        row = await self._db.fetchone(
            "group_for_invite", "SELECT group_id FROM groups WHERE invite_code = ?", (invite_code,)
        )
        return str(row["group_id"]) if row else None

    async def bans(self, group_id: str) -> list[Ban]:
        rows = await self._db.fetchall(
            "group_bans", "SELECT * FROM group_bans WHERE group_id = ?", (group_id,)
        )
        return [Ban(r["user_id"], r["banned_by"], r["banned_at"]) for r in rows]

    async def bans_among(self, group_id: str, user_ids: Sequence[str]) -> dict[str, Ban]:
        found: dict[str, Ban] = {}
        for chunk in _chunks(user_ids):
            rows = await self._db.fetchall(
                "group_bans_among",
                f"SELECT * FROM group_bans WHERE group_id = ? AND user_id IN ({_marks(chunk)})",
                (group_id, *chunk),
            )
            found.update(
                {r["user_id"]: Ban(r["user_id"], r["banned_by"], r["banned_at"]) for r in rows}
            )
        return found

    async def join_requests(self, group_id: str) -> list[JoinRequest]:
        rows = await self._db.fetchall(
            "group_join_requests",
            "SELECT * FROM group_join_requests WHERE group_id = ?",
            (group_id,),
        )
        return [JoinRequest(r["user_id"], r["requested_at"]) for r in rows]

    async def join_requests_among(
        self, group_id: str, user_ids: Sequence[str]
    ) -> dict[str, JoinRequest]:
        found: dict[str, JoinRequest] = {}
        for chunk in _chunks(user_ids):
            rows = await self._db.fetchall(
                "group_join_requests_among",
                "SELECT * FROM group_join_requests WHERE group_id = ? "
                f"AND user_id IN ({_marks(chunk)})",
                (group_id, *chunk),
            )
            found.update({r["user_id"]: JoinRequest(r["user_id"], r["requested_at"]) for r in rows})
        return found

    async def groups_of(self, user_id: str) -> list[tuple[GroupRecord, Member]]:
        rows = await self._db.fetchall(
            "groups_of",
            f"SELECT g.{_RECORD_COLUMNS.replace(', ', ', g.')}, m.user_id AS member_id, "
            "m.role, m.added_by, m.joined_at FROM group_members m "
            "JOIN groups g ON g.group_id = m.group_id WHERE m.user_id = ?",
            (user_id,),
        )
        return [
            (
                _record(r),
                Member(r["member_id"], GroupRole(r["role"]), r["added_by"], r["joined_at"]),
            )
            for r in rows
        ]

    async def group_counts(self, user_ids: Sequence[str]) -> dict[str, int]:
        counts = dict.fromkeys(user_ids, 0)
        for chunk in _chunks(user_ids):
            rows = await self._db.fetchall(
                "group_counts",
                "SELECT user_id, COUNT(*) AS n FROM group_members "
                f"WHERE user_id IN ({_marks(chunk)}) GROUP BY user_id",
                chunk,
            )
            counts.update({r["user_id"]: int(r["n"]) for r in rows})
        return counts

    async def existing_users(self, user_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(user_ids):
            rows = await self._db.fetchall(
                "existing_users",
                f"SELECT user_id FROM accounts WHERE user_id IN ({_marks(chunk)})",
                chunk,
            )
            found.update(r["user_id"] for r in rows)
        return found

    async def request(self, user_id: str, request_id: str, *, now: float) -> RequestRecord | None:
        row = await self._db.fetchone(
            "group_request",
            "SELECT * FROM group_requests WHERE user_id = ? AND request_id = ? AND expires_at > ?",
            (user_id, request_id, now),
        )
        if row is None:
            return None
        return RequestRecord(
            row["user_id"], row["request_id"], row["method"], row["result"], row["expires_at"]
        )

    # --- changes -------------------------------------------------------------------------

    async def commit(self, change: GroupChange) -> bool:
        record = change.record
        async with self._db.write("group_commit") as tx:
            if change.base_revision == 0:
                inserted = await tx.execute(
                    f"INSERT OR IGNORE INTO groups ({_RECORD_COLUMNS}) VALUES ({_PLACEHOLDERS})",
                    _record_values(record),
                )
                if inserted == 0:
                    return False
                await _write_rows(tx, change)
            elif change.delete_group:
                # Members, bans and join requests go with it (ON DELETE CASCADE).
                deleted = await tx.execute(
                    "DELETE FROM groups WHERE group_id = ? AND revision = ?",
                    (record.group_id, change.base_revision),
                )
                if deleted == 0:
                    return False
            else:
                columns = _RECORD_COLUMNS.split(", ")[1:]
                updated = await tx.execute(
                    f"UPDATE groups SET {', '.join(f'{c} = ?' for c in columns)} "
                    "WHERE group_id = ? AND revision = ?",
                    (*record_values(record), record.group_id, change.base_revision),
                )
                if updated == 0:
                    return False
                await _write_rows(tx, change)
            if change.request is not None:
                await _record_request(tx, change.request)
            return True


async def _write_rows(tx: Transaction, change: GroupChange) -> None:
    group_id = change.record.group_id
    await tx.executemany(
        "DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
        [(group_id, u) for u in change.drop_members],
    )
    await tx.executemany(
        "INSERT OR REPLACE INTO group_members (group_id, user_id, role, added_by, joined_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [(group_id, m.user_id, int(m.role), m.added_by, m.joined_at) for m in change.put_members],
    )
    await tx.executemany(
        "DELETE FROM group_bans WHERE group_id = ? AND user_id = ?",
        [(group_id, u) for u in change.drop_bans],
    )
    await tx.executemany(
        "INSERT OR REPLACE INTO group_bans (group_id, user_id, banned_by, banned_at) "
        "VALUES (?, ?, ?, ?)",
        [(group_id, b.user_id, b.banned_by, b.banned_at) for b in change.put_bans],
    )
    await tx.executemany(
        "DELETE FROM group_join_requests WHERE group_id = ? AND user_id = ?",
        [(group_id, u) for u in change.drop_join_requests],
    )
    await tx.executemany(
        "INSERT OR REPLACE INTO group_join_requests (group_id, user_id, requested_at) "
        "VALUES (?, ?, ?)",
        [(group_id, r.user_id, r.requested_at) for r in change.put_join_requests],
    )


async def _record_request(tx: Transaction, request: RequestRecord) -> None:
    # A few expired answers go with every change, so the table stays about as large as
    # the retry window needs.
    await tx.execute(
        "DELETE FROM group_requests WHERE (user_id, request_id) IN (SELECT user_id, "
        "request_id FROM group_requests WHERE expires_at <= ? LIMIT ?)",
        (time.time(), _EXPIRED_PER_CHANGE),
    )
    await tx.execute(
        "INSERT OR REPLACE INTO group_requests (user_id, request_id, method, result, expires_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (request.user_id, request.request_id, request.method, request.result, request.expires_at),
    )
