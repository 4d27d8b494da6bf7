"""The ScyllaDB adapter of the PrivacyStore port.

* Settings: one `privacy_settings` row per user; a change writes only the columns it
  names (no read first), so concurrent changes of different settings both survive. Reads
  of many users are partition-key IN queries in chunks, run concurrently, together with
  the same reads of `accounts`, since users without an account must be left out.
* Contacts: one `contacts` partition per owner, clustered by contact id, so
  `contacts_among` is one query (IN on the clustering key). The static `contact_count`
  bounds the list: every change is one conditional batch on the owner's partition that
  bumps the static `version` IF it is still the one read, and writes the new count and
  the rows with it. A lightweight transaction (LWT) is atomic and isolated on one
  partition, so the count always equals the rows and concurrent changes can never pass
  the limit; a lost race reads again. (The version, not the count, is compared: a count
  can return to a value it had after other rows changed.)
* Request ids: `contact_requests` remembers each applied request's count with a TTL. It
  is written after the batch (an LWT cannot span two tables), so a repeat that races a
  crash in between applies the same additions and removals again, which leaves the list
  as the first attempt left it, unless another change came in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.storage.cql import CqlSession, Statement, ttl
from chatconnect.users.domain.errors import TooManyContacts
from chatconnect.users.domain.models import PrivacyChanges, PrivacySettings
from chatconnect.users.ports import PrivacyStore
from chatconnect.users.privacy_columns import COLUMNS, changed_columns, settings_from_row

IN_CHUNK = 100
"""Partition keys per IN query: enough to keep round trips few, small enough that one
coordinator never gathers a large fan-out alone."""

_CAS_ROUNDS = 16
"""Attempts of a contact change against concurrent changes of the same list before the
request fails as unavailable (retryable): one owner's devices rarely race at all."""

_SETTINGS = f"SELECT user_id, {', '.join(COLUMNS)} FROM privacy_settings WHERE user_id"


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    unique = list(dict.fromkeys(ids))
    return [unique[i : i + IN_CHUNK] for i in range(0, len(unique), IN_CHUNK)]


class ScyllaPrivacyStore(PrivacyStore):
    """Privacy settings and contact lists in ScyllaDB."""

    def __init__(self, cql: CqlSession) -> None:
        self._cql = cql

    async def privacy_settings(self, user_ids: Sequence[str]) -> dict[str, PrivacySettings]:
        chunks = _chunks(user_ids)
        existing, stored = await asyncio.gather(
            self._existing(chunks),
            asyncio.gather(
                *(
                    self._cql.execute_all("privacy_settings", f"{_SETTINGS} IN ?", (chunk,))
                    for chunk in chunks
                )
            ),
        )
        rows = {row["user_id"]: row for found in stored for row in found}
        return {user_id: settings_from_row(rows.get(user_id)) for user_id in existing}

    async def contacts_among(self, owner_id: str, candidates: Sequence[str]) -> set[str]:
        if not candidates:
            return set()
        rows = await self._cql.execute_all(
            "contacts_among",
            "SELECT contact_id FROM contacts WHERE owner_id = ? AND contact_id IN ?",
            (owner_id, list(dict.fromkeys(candidates))),
        )
        return {row["contact_id"] for row in rows}

    async def update_privacy_settings(
        self, user_id: str, changes: PrivacyChanges
    ) -> PrivacySettings:
        columns = changed_columns(changes)
        if columns:
            assignments = ", ".join(f"{name} = ?" for name in columns)
            await self._cql.execute(
                "update_privacy_settings",
                f"UPDATE privacy_settings SET {assignments} WHERE user_id = ?",
                (*columns.values(), user_id),
            )
        rows = await self._cql.execute("privacy_settings", f"{_SETTINGS} = ?", (user_id,))
        return settings_from_row(rows[0] if rows else None)

    async def existing_users(self, user_ids: Sequence[str]) -> set[str]:
        return await self._existing(_chunks(user_ids))

    async def _existing(self, chunks: list[list[str]]) -> set[str]:
        found = await asyncio.gather(
            *(
                self._cql.execute_all(
                    "existing_users", "SELECT user_id FROM accounts WHERE user_id IN ?", (chunk,)
                )
                for chunk in chunks
            )
        )
        return {row["user_id"] for rows in found for row in rows}

    async def update_contacts(
        self,
        owner_id: str,
        *,
        request_id: str,
        add: Sequence[str],
        remove: Sequence[str],
        max_contacts: int,
        now: float,
        remember_seconds: float,
    ) -> int:
        done = await self._cql.execute(
            "contact_request",
            "SELECT contact_count FROM contact_requests WHERE owner_id = ? AND request_id = ?",
            (owner_id, request_id),
        )
        if done:
            return int(done[0]["contact_count"])
        count = await self._change_contacts(owner_id, add, remove, max_contacts=max_contacts)
        await self._cql.execute(
            "remember_contact_request",
            "INSERT INTO contact_requests (owner_id, request_id, contact_count) "
            "VALUES (?, ?, ?) USING TTL ?",
            (owner_id, request_id, count, ttl(remember_seconds)),
        )
        return count

    async def _change_contacts(
        self, owner_id: str, add: Sequence[str], remove: Sequence[str], *, max_contacts: int
    ) -> int:
        for _ in range(_CAS_ROUNDS):
            head = await self._cql.execute(
                "contact_count",
                "SELECT version, contact_count FROM contacts WHERE owner_id = ? LIMIT 1",
                (owner_id,),
            )
            version: int | None = head[0]["version"] if head else None
            current: int = (head[0]["contact_count"] or 0) if head else 0
            present = await self.contacts_among(owner_id, [*add, *remove])
            new = sorted(set(add) - present)
            gone = sorted(set(remove) & present)
            count = current + len(new) - len(gone)
            if new and count > max_contacts:
                raise TooManyContacts(limit=max_contacts, actual=count)
            if not new and not gone:
                return current
            applied, _ = await self._cql.conditional_batch(
                "update_contacts",
                [
                    Statement(
                        "UPDATE contacts SET version = ?, contact_count = ? WHERE owner_id = ? "
                        "IF version = ?",
                        ((version or 0) + 1, count, owner_id, version),
                    ),
                    *(
                        Statement(
                            "INSERT INTO contacts (owner_id, contact_id) VALUES (?, ?)",
                            (owner_id, contact_id),
                        )
                        for contact_id in new
                    ),
                    *(
                        Statement(
                            "DELETE FROM contacts WHERE owner_id = ? AND contact_id = ?",
                            (owner_id, contact_id),
                        )
                        for contact_id in gone
                    ),
                ],
            )
            if applied:
                return count
        raise StoreUnavailable("the contact list kept changing concurrently; retry")

    async def list_contacts(self, owner_id: str, *, after: str, limit: int) -> list[str]:
        # The clustering restriction also keeps out the partition's static-only row,
        # which a list emptied by removals still has.
        rows = await self._cql.execute(
            "list_contacts",
            "SELECT contact_id FROM contacts WHERE owner_id = ? AND contact_id > ? LIMIT ?",
            (owner_id, after, limit),
        )
        return [row["contact_id"] for row in rows if row["contact_id"] is not None]
