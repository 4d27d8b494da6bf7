"""The embedded (SQLite) device store."""

from __future__ import annotations

from collections.abc import Sequence

from chatconnect.devices.device_cache import DeviceListCache
from chatconnect.devices.domain.errors import (
    DeviceLimitReached,
    LinkAlreadyApproved,
    LinkCodeNotFound,
    LinkNotApproved,
)
from chatconnect.devices.domain.models import DeviceRecord, LinkRequest
from chatconnect.devices.ports import USERS_PER_READ, DeviceStore
from chatconnect.model import DeviceAddress, DeviceKind
from chatconnect.storage.sqlite import Database, Row
from chatconnect.users.domain.models import NewDevice
from chatconnect.users.embedded import delete_device, insert_device


def _device(row: Row) -> DeviceRecord:
    return DeviceRecord(
        user_id=row["user_id"],
        device_id=row["device_id"],
        incarnation=row["incarnation"],
        registration_id=row["registration_id"],
        kind=DeviceKind(row["kind"]),
        encrypted_name=row["encrypted_name"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
    )


def _link(row: Row) -> LinkRequest:
    return LinkRequest(
        link_code=row["link_code"],
        secret_hash=row["secret_hash"],
        request_id=row["request_id"],
        ephemeral_key=row["ephemeral_key"],
        kind=DeviceKind(row["kind"]),
        expires_at=row["expires_at"],
        approved_user_id=row["approved_user_id"],
        approved_request_id=row["approved_request_id"],
        provisioning=row["provisioning"],
        device_id=row["device_id"],
        incarnation=row["incarnation"],
        completed_request_id=row["completed_request_id"],
    )


class SqliteDeviceStore(DeviceStore):
    """Devices and pending links in the embedded database."""

    def __init__(self, db: Database, cache: DeviceListCache | None = None) -> None:
        """`cache`, if given, must hear of every change to the devices table
        (`Database.watch`); `open` wires one up."""
        self._db = db
        self._cache = cache

    @classmethod
    async def open(cls, db: Database, *, cached_users: int) -> SqliteDeviceStore:
        """A store whose device lists of up to `cached_users` users stay in memory
        until a write changes them (0: none). For one process only: other processes'
        writes to the same file would not reach its cache."""
        if cached_users == 0:
            return cls(db)
        cache = DeviceListCache(cached_users)
        await db.watch("devices", "user_id", cache.changed)
        return cls(db, cache)

    async def list_devices(self, user_id: str) -> list[DeviceRecord]:
        rows = await self._db.fetchall(
            "list_devices",
            "SELECT * FROM devices WHERE user_id = ? ORDER BY device_id",
            (user_id,),
        )
        return [_device(r) for r in rows]

    async def list_devices_of(self, user_ids: Sequence[str]) -> dict[str, list[DeviceRecord]]:
        cache = self._cache
        if cache is None:
            return await self._read_devices_of(list(dict.fromkeys(user_ids)))
        found: dict[str, list[DeviceRecord]] = {}
        missing: list[str] = []
        for user_id in dict.fromkeys(user_ids):
            kept = cache.get(user_id)
            if kept is None:
                missing.append(user_id)
            else:
                found[user_id] = kept
        if missing:
            read_at = cache.mark()
            read = await self._read_devices_of(missing)
            cache.keep(read, read_at=read_at)
            found.update(read)
        return found

    async def _read_devices_of(self, unique: list[str]) -> dict[str, list[DeviceRecord]]:
        found: dict[str, list[DeviceRecord]] = {}
        for start in range(0, len(unique), USERS_PER_READ):
            chunk = unique[start : start + USERS_PER_READ]
            rows = await self._db.fetchall(
                "list_devices_of",
                f"SELECT * FROM devices WHERE user_id IN ({', '.join('?' * len(chunk))}) "
                "ORDER BY user_id, device_id",
                tuple(chunk),
            )
            for row in rows:
                found.setdefault(row["user_id"], []).append(_device(row))
        return found

    async def identity_key(self, user_id: str) -> bytes | None:
        row = await self._db.fetchone(
            "identity_key", "SELECT identity_key FROM accounts WHERE user_id = ?", (user_id,)
        )
        return bytes(row["identity_key"]) if row else None

    async def is_current(self, device: DeviceAddress, incarnation: str) -> bool:
        row = await self._db.fetchone(
            "is_current",
            "SELECT 1 FROM devices WHERE user_id = ? AND device_id = ? AND incarnation = ?",
            (device.user_id, device.device_id, incarnation),
        )
        return row is not None

    async def create_link(self, link: LinkRequest) -> LinkRequest:
        async with self._db.write("create_link") as tx:
            existing = await tx.fetchone(
                "SELECT * FROM device_links WHERE request_id = ? AND ephemeral_key = ?",
                (link.request_id, link.ephemeral_key),
            )
            if existing is not None:
                # A retried BeginLink keeps its code; only the latest secret is valid.
                await tx.execute(
                    "UPDATE device_links SET secret_hash = ? WHERE link_code = ?",
                    (link.secret_hash, existing["link_code"]),
                )
                stored = _link(existing)
                return LinkRequest(**{**stored.__dict__, "secret_hash": link.secret_hash})
            await tx.execute(
                "INSERT INTO device_links (link_code, secret_hash, request_id, ephemeral_key, "
                "kind, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    link.link_code,
                    link.secret_hash,
                    link.request_id,
                    link.ephemeral_key,
                    int(link.kind),
                    link.expires_at,
                ),
            )
            return link

    async def get_link(
        self, *, link_code: str = "", secret_hash: bytes = b""
    ) -> LinkRequest | None:
        if link_code:
            row = await self._db.fetchone(
                "get_link", "SELECT * FROM device_links WHERE link_code = ?", (link_code,)
            )
        else:
            row = await self._db.fetchone(
                "get_link", "SELECT * FROM device_links WHERE secret_hash = ?", (secret_hash,)
            )
        return _link(row) if row else None

    async def approve_link(
        self,
        link_code: str,
        *,
        user_id: str,
        request_id: str,
        provisioning: bytes,
        max_devices: int,
        now: float,
    ) -> LinkRequest:
        async with self._db.write("approve_link") as tx:
            row = await tx.fetchone("SELECT * FROM device_links WHERE link_code = ?", (link_code,))
            if row is None:
                raise LinkCodeNotFound("no pending link has this code")
            link = _link(row)
            if link.approved_user_id is not None:
                if link.approved_user_id == user_id and link.approved_request_id == request_id:
                    return link
                raise LinkAlreadyApproved("this link code was already approved")
            # Approved links that have not completed yet hold a place: otherwise several
            # approvals in a row could overshoot the limit.
            count = await tx.fetchone(
                "SELECT (SELECT COUNT(*) FROM devices WHERE user_id = ? AND device_id != 1) + "
                "(SELECT COUNT(*) FROM device_links WHERE approved_user_id = ? AND "
                "completed_request_id IS NULL AND expires_at > ?) AS n",
                (user_id, user_id, now),
            )
            linked = int(count["n"]) if count else 0
            if linked >= max_devices:
                raise DeviceLimitReached(
                    "linked devices",
                    setting="devices.max_linked_devices",
                    limit=max_devices,
                    actual=linked + 1,
                )
            account = await tx.fetchone(
                "UPDATE accounts SET next_device_id = next_device_id + 1 WHERE user_id = ? "
                "RETURNING next_device_id - 1 AS device_id",
                (user_id,),
            )
            assert account is not None
            await tx.execute(
                "UPDATE device_links SET approved_user_id = ?, approved_request_id = ?, "
                "provisioning = ?, device_id = ? WHERE link_code = ?",
                (user_id, request_id, provisioning, account["device_id"], link_code),
            )
            row = await tx.fetchone("SELECT * FROM device_links WHERE link_code = ?", (link_code,))
            assert row is not None
            return _link(row)

    async def complete_link(
        self, link_code: str, *, request_id: str, device: NewDevice, now: float
    ) -> DeviceAddress:
        async with self._db.write("complete_link") as tx:
            row = await tx.fetchone("SELECT * FROM device_links WHERE link_code = ?", (link_code,))
            if row is None:
                raise LinkCodeNotFound("no pending link has this code")
            link = _link(row)
            if link.approved_user_id is None or link.device_id is None:
                raise LinkNotApproved("the link is not approved")
            address = DeviceAddress(link.approved_user_id, link.device_id)
            if link.completed_request_id is not None:
                if link.completed_request_id == request_id:
                    return address
                raise LinkAlreadyApproved("this link was already completed")
            await insert_device(tx, address, device, now)
            await tx.execute(
                "UPDATE device_links SET incarnation = ?, completed_request_id = ? "
                "WHERE link_code = ?",
                (device.incarnation, request_id, link_code),
            )
            return address

    async def unlink(self, device: DeviceAddress) -> bool:
        async with self._db.write("unlink") as tx:
            exists = await tx.fetchone(
                "SELECT 1 FROM devices WHERE user_id = ? AND device_id = ?",
                (device.user_id, device.device_id),
            )
            if exists is None:
                return False
            await delete_device(tx, device)
            return True

    async def touch(self, device: DeviceAddress, now: float) -> None:
        async with self._db.write("touch_device") as tx:
            await tx.execute(
                "UPDATE devices SET last_seen_at = ? WHERE user_id = ? AND device_id = ?",
                (now, device.user_id, device.device_id),
            )
