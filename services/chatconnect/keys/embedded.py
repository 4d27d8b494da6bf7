"""The embedded (SQLite) key store."""

from __future__ import annotations

from collections.abc import Sequence

from chatconnect.keys.domain.models import PreKey, PreKeyBundle, SignedPreKey
from chatconnect.keys.ports import KeyStore
from chatconnect.model import DeviceAddress
from chatconnect.storage.sqlite import Database


class SqliteKeyStore(KeyStore):
    """Prekeys in the embedded database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def set_signed_prekey(self, device: DeviceAddress, key: SignedPreKey) -> None:
        async with self._db.write("set_signed_prekey") as tx:
            await tx.execute(
                "INSERT OR REPLACE INTO signed_prekeys VALUES (?, ?, ?, ?, ?)",
                (device.user_id, device.device_id, key.key_id, key.public_key, key.signature),
            )

    async def add_prekeys(
        self, device: DeviceAddress, keys: Sequence[PreKey], *, max_stored: int
    ) -> int:
        async with self._db.write("add_prekeys") as tx:
            row = await tx.fetchone(
                "SELECT COUNT(*) AS n FROM one_time_prekeys WHERE user_id = ? AND device_id = ?",
                (device.user_id, device.device_id),
            )
            room = max(max_stored - (int(row["n"]) if row else 0), 0)
            await tx.executemany(
                "INSERT OR IGNORE INTO one_time_prekeys VALUES (?, ?, ?, ?)",
                [
                    (device.user_id, device.device_id, k.key_id, k.public_key)
                    for k in list(keys)[:room]
                ],
            )
            row = await tx.fetchone(
                "SELECT COUNT(*) AS n FROM one_time_prekeys WHERE user_id = ? AND device_id = ?",
                (device.user_id, device.device_id),
            )
            return int(row["n"]) if row else 0

    async def take_bundles(self, user_id: str, device_ids: Sequence[int]) -> list[PreKeyBundle]:
        bundles: list[PreKeyBundle] = []
        async with self._db.write("take_bundles") as tx:
            if not device_ids:
                rows = await tx.fetchall(
                    "SELECT device_id FROM devices WHERE user_id = ? ORDER BY device_id",
                    (user_id,),
                )
                device_ids = [int(r["device_id"]) for r in rows]
            for device_id in device_ids:
                row = await tx.fetchone(
                    "SELECT d.registration_id, a.identity_key, s.key_id, s.public_key, "
                    "s.signature FROM devices d JOIN accounts a ON a.user_id = d.user_id "
                    "JOIN signed_prekeys s ON s.user_id = d.user_id AND "
                    "s.device_id = d.device_id WHERE d.user_id = ? AND d.device_id = ?",
                    (user_id, device_id),
                )
                if row is None:
                    continue
                one_time = await tx.fetchone(
                    "DELETE FROM one_time_prekeys WHERE (user_id, device_id, key_id) = "
                    "(SELECT user_id, device_id, key_id FROM one_time_prekeys WHERE "
                    "user_id = ? AND device_id = ? ORDER BY key_id LIMIT 1) "
                    "RETURNING key_id, public_key",
                    (user_id, device_id),
                )
                bundles.append(
                    PreKeyBundle(
                        device_id=device_id,
                        registration_id=row["registration_id"],
                        identity_key=bytes(row["identity_key"]),
                        signed_prekey=SignedPreKey(
                            row["key_id"], bytes(row["public_key"]), bytes(row["signature"])
                        ),
                        one_time_prekey=(
                            PreKey(one_time["key_id"], bytes(one_time["public_key"]))
                            if one_time
                            else None
                        ),
                    )
                )
        return bundles

    async def count(self, device: DeviceAddress) -> int:
        row = await self._db.fetchone(
            "count_prekeys",
            "SELECT COUNT(*) AS n FROM one_time_prekeys WHERE user_id = ? AND device_id = ?",
            (device.user_id, device.device_id),
        )
        return int(row["n"]) if row else 0
