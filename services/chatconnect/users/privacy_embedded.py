"""The embedded (SQLite) adapter of the PrivacyStore port.

Every change runs in one write transaction, so the contact limit, the request-id record
and the rows it guards are consistent by construction. Lists of ids travel as one JSON
array parameter (`json_each`), so a read takes one statement however many ids it names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from chatconnect.storage.sqlite import Database
from chatconnect.users.domain.errors import TooManyContacts
from chatconnect.users.domain.models import PrivacyChanges, PrivacySettings
from chatconnect.users.ports import PrivacyStore
from chatconnect.users.privacy_columns import COLUMNS, changed_columns, settings_from_row

_IDS = "(SELECT value FROM json_each(?))"
_SETTINGS_COLUMNS = ", ".join(f"p.{name}" for name in COLUMNS)


def _ids(user_ids: Sequence[str]) -> str:
    return json.dumps(list(user_ids))


class SqlitePrivacyStore(PrivacyStore):
    """Privacy settings and contact lists in the embedded database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def privacy_settings(self, user_ids: Sequence[str]) -> dict[str, PrivacySettings]:
        if not user_ids:
            return {}
        rows = await self._db.fetchall(
            "privacy_settings",
            f"SELECT a.user_id AS account, {_SETTINGS_COLUMNS} FROM accounts a "
            f"LEFT JOIN privacy_settings p ON p.user_id = a.user_id WHERE a.user_id IN {_IDS}",
            (_ids(user_ids),),
        )
        return {row["account"]: settings_from_row(row) for row in rows}

    async def contacts_among(self, owner_id: str, candidates: Sequence[str]) -> set[str]:
        if not candidates:
            return set()
        rows = await self._db.fetchall(
            "contacts_among",
            f"SELECT contact_id FROM contacts WHERE owner_id = ? AND contact_id IN {_IDS}",
            (owner_id, _ids(candidates)),
        )
        return {row["contact_id"] for row in rows}

    async def update_privacy_settings(
        self, user_id: str, changes: PrivacyChanges
    ) -> PrivacySettings:
        columns = changed_columns(changes)
        async with self._db.write("update_privacy_settings") as tx:
            if columns:
                names = ", ".join(columns)
                marks = ", ".join("?" for _ in columns)
                updates = ", ".join(f"{name} = excluded.{name}" for name in columns)
                await tx.execute(
                    f"INSERT INTO privacy_settings (user_id, {names}) VALUES (?, {marks}) "
                    f"ON CONFLICT (user_id) DO UPDATE SET {updates}",
                    (user_id, *columns.values()),
                )
            row = await tx.fetchone(
                f"SELECT {', '.join(COLUMNS)} FROM privacy_settings WHERE user_id = ?",
                (user_id,),
            )
        return settings_from_row(row)

    async def existing_users(self, user_ids: Sequence[str]) -> set[str]:
        if not user_ids:
            return set()
        rows = await self._db.fetchall(
            "existing_users",
            f"SELECT user_id FROM accounts WHERE user_id IN {_IDS}",
            (_ids(user_ids),),
        )
        return {row["user_id"] for row in rows}

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
        async with self._db.write("update_contacts") as tx:
            # Forgetting the owner's old request ids here keeps the table bounded without
            # a sweeper: it only ever holds ids of the last `remember_seconds`.
            await tx.execute(
                "DELETE FROM contact_requests WHERE owner_id = ? AND expires_at <= ?",
                (owner_id, now),
            )
            done = await tx.fetchone(
                "SELECT contact_count FROM contact_requests WHERE owner_id = ? AND request_id = ?",
                (owner_id, request_id),
            )
            if done is not None:
                return int(done["contact_count"])
            counted = await tx.fetchone(
                "SELECT COUNT(*) AS n FROM contacts WHERE owner_id = ?", (owner_id,)
            )
            count = int(counted["n"]) if counted else 0
            present = {
                row["contact_id"]
                for row in await tx.fetchall(
                    f"SELECT contact_id FROM contacts WHERE owner_id = ? AND contact_id IN {_IDS}",
                    (owner_id, _ids([*add, *remove])),
                )
            }
            new = sorted(set(add) - present)
            gone = sorted(set(remove) & present)
            count += len(new) - len(gone)
            if new and count > max_contacts:
                raise TooManyContacts(limit=max_contacts, actual=count)
            await tx.executemany(
                "INSERT INTO contacts (owner_id, contact_id) VALUES (?, ?)",
                [(owner_id, contact_id) for contact_id in new],
            )
            await tx.executemany(
                "DELETE FROM contacts WHERE owner_id = ? AND contact_id = ?",
                [(owner_id, contact_id) for contact_id in gone],
            )
            await tx.execute(
                "INSERT INTO contact_requests VALUES (?, ?, ?, ?)",
                (owner_id, request_id, count, now + remember_seconds),
            )
            return count

    async def list_contacts(self, owner_id: str, *, after: str, limit: int) -> list[str]:
        rows = await self._db.fetchall(
            "list_contacts",
            "SELECT contact_id FROM contacts WHERE owner_id = ? AND contact_id > ? "
            "ORDER BY contact_id LIMIT ?",
            (owner_id, after, limit),
        )
        return [row["contact_id"] for row in rows]
