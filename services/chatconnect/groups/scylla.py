"""The ScyllaDB group store.

`groups` holds a partition per group: the group row in static columns, a clustering row
per member. A change (`commit`) is:

1. one lightweight transaction on the statics, `IF revision = ? AND pending = null`: the
   fence. It writes the new group row, the whole change (JSON) into `pending`, and the
   timestamp `write_time` at which every row of the change will be written (later than
   the previous change's, so a slow writer of an older change can never undo a newer
   one);
2. the change's rows: member, ban and join request rows in single-partition batches,
   each member's `user_groups` row, the invite code lookup and the request's answer, all
   `USING TIMESTAMP write_time` (idempotent: anyone may write them again);
3. an LWT that clears `pending` (IF revision = the change's revision).

Nothing can commit while `pending` is set, and whoever finds it set (the next writer,
or a reader of `state`) writes the rows and clears it: a change interrupted by a crash
is finished, never lost or half-applied. The send path (`membership`) does not write:
it reads the partition and overlays a pending change, so from the moment the fence
applied a removed member is never returned, and after RemoveMembers returned its row is
gone as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from chatconnect.groups.domain.errors import GroupBusy
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
from chatconnect.groups.domain.results import decode, encode
from chatconnect.groups.ports import GroupStore
from chatconnect.groups.scylla_rows import (
    MEMBER_COLUMNS,
    STATIC_COLUMNS,
    STATICS,
    member_from_row,
    now_micros,
    partition_batches,
    record_from_row,
    single_writes,
    static_values,
)
from chatconnect.storage.cql import CqlSession, Row

READ_ATTEMPTS = 5
"""Reads of a partition that changed while it was paged through before giving up."""

_SET_STATICS = ", ".join(f"{c} = ?" for c in (*STATIC_COLUMNS, "pending", "write_time"))
_INSERT_STATICS = ", ".join(("group_id", *STATIC_COLUMNS, "pending", "write_time"))
_INSERT_MARKS = ", ".join("?" for _ in range(len(STATIC_COLUMNS) + 3))


class _Snapshot:
    """One consistent read of a group partition."""

    def __init__(self, rows: list[Row]) -> None:
        first = rows[0]
        self.record = record_from_row(first)
        self.deleted = bool(first["deleted"])
        self.write_time = int(first["write_time"] or 0)
        self.pending = decode(GroupChange, first["pending"]) if first["pending"] else None
        self.members = {r["user_id"]: member_from_row(r) for r in rows if r["user_id"] is not None}

    def overlaid(self) -> dict[str, Member]:
        """The members once the pending change's rows are written."""
        members = dict(self.members)
        if self.pending is not None:
            for user_id in self.pending.drop_members:
                members.pop(user_id, None)
            members.update({m.user_id: m for m in self.pending.put_members})
        return members


class ScyllaGroupStore(GroupStore):
    """Groups in ScyllaDB."""

    def __init__(self, cql: CqlSession) -> None:
        self._cql = cql

    # --- the send path's reads -----------------------------------------------------------

    async def membership_version(self, group_id: str) -> int | None:
        rows = await self._cql.execute(
            "group_membership_version",
            "SELECT membership_version, deleted, revision FROM groups WHERE group_id = ? LIMIT 1",
            (group_id,),
        )
        if not rows or rows[0]["revision"] is None or rows[0]["deleted"]:
            return None
        return int(rows[0]["membership_version"])

    async def membership(self, group_id: str) -> GroupMembership | None:
        snapshot = await self._snapshot(group_id)
        if snapshot is None or snapshot.deleted:
            return None
        return GroupState(snapshot.record, snapshot.overlaid()).membership()

    # --- reads ---------------------------------------------------------------------------

    async def _snapshot(self, group_id: str) -> _Snapshot | None:
        """The partition, with every page from one revision (re-read otherwise)."""
        for _ in range(READ_ATTEMPTS):
            rows = await self._cql.execute_all(
                "group_partition",
                f"SELECT {STATICS}, {MEMBER_COLUMNS} FROM groups WHERE group_id = ?",
                (group_id,),
            )
            if not rows or rows[0]["revision"] is None:
                return None
            # Static columns come with every row; pages read across a change differ.
            if len({(r["revision"], r["pending"] is None) for r in rows}) == 1:
                snapshot = _Snapshot(rows)
                return None if snapshot.deleted and snapshot.pending is None else snapshot
        raise GroupBusy(f"group {group_id} kept changing while it was read; retry")

    async def _statics(self, group_id: str) -> _Snapshot | None:
        rows = await self._cql.execute(
            "group_record", f"SELECT {STATICS} FROM groups WHERE group_id = ? LIMIT 1", (group_id,)
        )
        if not rows or rows[0]["revision"] is None:
            return None
        return _Snapshot([{**rows[0], "user_id": None}])

    async def record(self, group_id: str) -> GroupRecord | None:
        snapshot = await self._statics(group_id)
        if snapshot is None or snapshot.deleted:
            return None
        return snapshot.record

    async def state(self, group_id: str) -> GroupState | None:
        snapshot = await self._snapshot(group_id)
        if snapshot is not None and snapshot.pending is not None:
            # A change is in flight or was interrupted: finish it, then read again.
            await self._finish(snapshot.pending, snapshot.write_time)
            snapshot = await self._snapshot(group_id)
        if snapshot is None or snapshot.deleted:
            return None
        return GroupState(snapshot.record, snapshot.overlaid())

    async def member(self, group_id: str, user_id: str) -> Member | None:
        snapshot = await self._statics(group_id)
        if snapshot is None or snapshot.deleted:
            return None
        if snapshot.pending is not None:
            if user_id in snapshot.pending.drop_members:
                return None
            for member in snapshot.pending.put_members:
                if member.user_id == user_id:
                    return member
        rows = await self._cql.execute(
            "group_member",
            f"SELECT {MEMBER_COLUMNS} FROM groups WHERE group_id = ? AND user_id = ?",
            (group_id, user_id),
        )
        return member_from_row(rows[0]) if rows else None

    async def group_for_invite(self, invite_code: str) -> str | None:
        rows = await self._cql.execute(
            "group_for_invite",
            "SELECT group_id FROM group_invites WHERE invite_code = ?",
            (invite_code,),
        )
        return str(rows[0]["group_id"]) if rows else None

    async def bans(self, group_id: str) -> list[Ban]:
        rows = await self._cql.execute_all(
            "group_bans", "SELECT * FROM group_bans WHERE group_id = ?", (group_id,)
        )
        return [Ban(r["user_id"], r["banned_by"], r["banned_at"]) for r in rows]

    async def bans_among(self, group_id: str, user_ids: Sequence[str]) -> dict[str, Ban]:
        if not user_ids:
            return {}
        rows = await self._cql.execute_all(
            "group_bans_among",
            "SELECT * FROM group_bans WHERE group_id = ? AND user_id IN ?",
            (group_id, list(user_ids)),
        )
        return {r["user_id"]: Ban(r["user_id"], r["banned_by"], r["banned_at"]) for r in rows}

    async def join_requests(self, group_id: str) -> list[JoinRequest]:
        rows = await self._cql.execute_all(
            "group_join_requests",
            "SELECT * FROM group_join_requests WHERE group_id = ?",
            (group_id,),
        )
        return [JoinRequest(r["user_id"], r["requested_at"]) for r in rows]

    async def join_requests_among(
        self, group_id: str, user_ids: Sequence[str]
    ) -> dict[str, JoinRequest]:
        if not user_ids:
            return {}
        rows = await self._cql.execute_all(
            "group_join_requests_among",
            "SELECT * FROM group_join_requests WHERE group_id = ? AND user_id IN ?",
            (group_id, list(user_ids)),
        )
        return {r["user_id"]: JoinRequest(r["user_id"], r["requested_at"]) for r in rows}

    async def groups_of(self, user_id: str) -> list[tuple[GroupRecord, Member]]:
        rows = await self._cql.execute_all(
            "groups_of", "SELECT group_id FROM user_groups WHERE user_id = ?", (user_id,)
        )
        found = await asyncio.gather(*(self._membership_of(r["group_id"], user_id) for r in rows))
        return [f for f in found if f is not None]

    async def _membership_of(
        self, group_id: str, user_id: str
    ) -> tuple[GroupRecord, Member] | None:
        """The group and the user's membership, checked against the group itself."""
        record = await self.record(group_id)
        member = await self.member(group_id, user_id) if record else None
        return (record, member) if record and member else None

    async def group_counts(self, user_ids: Sequence[str]) -> dict[str, int]:
        async def count(user_id: str) -> int:
            rows = await self._cql.execute(
                "group_count", "SELECT COUNT(*) AS n FROM user_groups WHERE user_id = ?", (user_id,)
            )
            return int(rows[0]["n"]) if rows else 0

        counts = await asyncio.gather(*(count(u) for u in user_ids))
        return dict(zip(user_ids, counts, strict=True))

    async def existing_users(self, user_ids: Sequence[str]) -> set[str]:
        async def exists(user_id: str) -> bool:
            rows = await self._cql.execute(
                "user_exists", "SELECT user_id FROM accounts WHERE user_id = ?", (user_id,)
            )
            return bool(rows)

        found = await asyncio.gather(*(exists(u) for u in user_ids))
        return {u for u, ok in zip(user_ids, found, strict=True) if ok}

    async def request(self, user_id: str, request_id: str, *, now: float) -> RequestRecord | None:
        rows = await self._cql.execute(
            "group_request",
            "SELECT * FROM group_requests WHERE user_id = ? AND request_id = ?",
            (user_id, request_id),
        )
        if not rows or rows[0]["expires_at"] <= now:
            return None
        row = rows[0]
        return RequestRecord(
            row["user_id"], row["request_id"], row["method"], row["result"], row["expires_at"]
        )

    # --- changes -------------------------------------------------------------------------

    async def commit(self, change: GroupChange) -> bool:
        record = change.record
        pending = encode(change)
        if change.base_revision == 0:
            stamp = now_micros()
            applied, _ = await self._cql.conditional(
                "create_group",
                f"INSERT INTO groups ({_INSERT_STATICS}) VALUES ({_INSERT_MARKS}) IF NOT EXISTS",
                (record.group_id, *static_values(record, deleted=False), pending, stamp),
            )
        else:
            current = await self._statics(record.group_id)
            if current is None or current.record.revision != change.base_revision:
                return False
            if current.pending is not None:
                await self._finish(current.pending, current.write_time)
                return False
            stamp = max(now_micros(), current.write_time + 1)
            applied, _ = await self._cql.conditional(
                "commit_group",
                f"UPDATE groups SET {_SET_STATICS} WHERE group_id = ? "
                "IF revision = ? AND pending = null",
                (
                    *static_values(record, deleted=change.delete_group),
                    pending,
                    stamp,
                    record.group_id,
                    change.base_revision,
                ),
            )
        if applied:
            await self._finish(change, stamp)
        return applied

    async def _finish(self, change: GroupChange, stamp: int) -> None:
        """Writes the rows of a change whose fence applied, then clears `pending`."""
        await asyncio.gather(
            self._cql.batches("group_rows", partition_batches(change, stamp)),
            self._cql.execute_many("group_links", single_writes(change, stamp)),
        )
        await self._cql.conditional(
            "group_settled",
            "UPDATE groups SET pending = null WHERE group_id = ? IF revision = ?",
            (change.record.group_id, change.record.revision),
        )
