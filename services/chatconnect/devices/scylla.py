"""The ScyllaDB device store.

`devices` has a partition per account. A link lives in `device_links` (by code), found
by secret through `device_links_by_secret` and by request through
`device_links_by_request`; an approved link holds a place under the device limit in
`device_links_by_approver` (a partition per account) until it is completed. Link rows
carry a TTL of a day past their expiry.

Lightweight transactions (LWTs), and why:

* BeginLink claims `device_links_by_request` IF NOT EXISTS, so every retry of a request
  (same request id and ephemeral key) gets the first one's code; a retry only rotates the
  secret, and the link's own `secret_hash` decides which secret is valid.
* ApproveLink (1) reserves a place with a conditional batch that bumps the approver
  partition's static `version` (IF version = ?): reservations of one account are
  serialized, so the count each one checked (linked devices and unexpired reservations)
  still holds when it applies, and the limit is exact under concurrency; (2) takes the
  device id from `accounts.next_device_id` IF next_device_id = ? (retried), so ids are
  unique and never reused; (3) claims the link IF approved_user_id = null, so one approval
  wins. A retry of the same request finds its reservation and approval again.
* CompleteLink claims the link IF completed_request_id = null. The winner, or a retry
  with the same request id, then creates the device idempotently: its keys (the one-time
  prekeys once only, see keys/scylla.py), then one logged batch with the device row and
  the link's `device_created` flag, so a retry after an unlink cannot revive the device.
  Then the reservation is released.
* Unlink removes the device's keys and inbox partitions (never `inbox_heads`: sequences
  are not reused), then the device row IF incarnation = ?: of concurrent unlinks exactly
  one returns True.

Plain writes: the device row, `touch` (a row without an incarnation, which a touch racing
an unlink could leave, counts as no device) and the secret rotation.

Refresh tokens are not deleted on unlink: `device_sessions` is keyed by token hash only.
They are left to expire. That is safe only because a token is honoured while its device
incarnation is current: `take_refresh_token` must check it, as the embedded store does
(`SessionIssuer.refresh` does not check it itself), and every RPC checks `is_current`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable, Sequence

from chatconnect.devices.domain.errors import (
    DeviceLimitReached,
    LinkAlreadyApproved,
    LinkCodeNotFound,
    LinkNotApproved,
)
from chatconnect.devices.domain.models import DeviceRecord, LinkRequest
from chatconnect.devices.ports import USERS_PER_READ, DeviceStore
from chatconnect.keys.scylla import conditional_batch, delete_device_keys, write_device_keys
from chatconnect.model import DeviceAddress, DeviceKind
from chatconnect.runtime.errors import UserNotFound
from chatconnect.storage.cql import CqlSession, Row, Statement
from chatconnect.users.domain.models import NewDevice

# How long a link's rows outlive its expiry (until then it reads as expired, not unknown).
LINK_RETENTION_SECONDS = 24 * 3600

PRIMARY_DEVICE_ID = 1

_WHERE_DEVICE = "WHERE user_id = ? AND device_id = ?"


def _device(row: Row) -> DeviceRecord:
    return DeviceRecord(
        user_id=row["user_id"],
        device_id=row["device_id"],
        incarnation=row["incarnation"],
        registration_id=row["registration_id"],
        kind=DeviceKind(row["kind"]),
        encrypted_name=bytes(row["encrypted_name"] or b""),
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
    )


def _link(row: Row) -> LinkRequest:
    return LinkRequest(
        link_code=row["link_code"],
        secret_hash=bytes(row["secret_hash"]),
        request_id=row["request_id"],
        ephemeral_key=bytes(row["ephemeral_key"]),
        kind=DeviceKind(row["kind"]),
        expires_at=row["expires_at"],
        approved_user_id=row["approved_user_id"],
        approved_request_id=row["approved_request_id"],
        provisioning=None if row["provisioning"] is None else bytes(row["provisioning"]),
        device_id=row["device_id"],
        incarnation=row["incarnation"],
        completed_request_id=row["completed_request_id"],
    )


def _ttl(expires_at: float, now: float) -> int:
    """The TTL of a link's rows written at `now`."""
    return int(max(expires_at - now, 0.0)) + LINK_RETENTION_SECONDS


def _approved_by(link: LinkRequest, user_id: str, request_id: str) -> LinkRequest:
    """`link` if this request approved it; raises LinkAlreadyApproved otherwise."""
    if link.approved_user_id == user_id and link.approved_request_id == request_id:
        return link
    raise LinkAlreadyApproved("this link code was already approved")


async def delete_device_data(cql: CqlSession, device: DeviceAddress) -> None:
    """Removes a device's keys and inbox, but not its inbox head (so sequences are never
    reused), nor its device row or refresh tokens."""
    params = (device.user_id, device.device_id)
    await asyncio.gather(
        delete_device_keys(cql, device),
        cql.execute_many(
            "delete_inbox",
            [
                Statement(f"DELETE FROM {table} {_WHERE_DEVICE}", params)
                for table in ("inbox", "inbox_by_message", "inbox_gaps")
            ],
        ),
    )


class ScyllaDeviceStore(DeviceStore):
    """Devices and pending links in ScyllaDB."""

    def __init__(self, cql: CqlSession) -> None:
        self._cql = cql

    # --- directory -----------------------------------------------------------------------

    async def list_devices(self, user_id: str) -> list[DeviceRecord]:
        rows = await self._cql.execute_all(
            "list_devices", "SELECT * FROM devices WHERE user_id = ?", (user_id,)
        )
        return [_device(r) for r in rows if r["incarnation"] is not None]

    async def list_devices_of(self, user_ids: Sequence[str]) -> dict[str, list[DeviceRecord]]:
        unique = list(dict.fromkeys(user_ids))
        chunks = [
            unique[start : start + USERS_PER_READ]
            for start in range(0, len(unique), USERS_PER_READ)
        ]
        # One multi-partition read per chunk, run concurrently: a bounded number of round
        # trips for a group of any size, and no single coordinator asked for thousands.
        pages = await asyncio.gather(
            *(
                self._cql.execute_all(
                    "list_devices_of",
                    f"SELECT * FROM devices WHERE user_id IN ({', '.join('?' * len(chunk))})",
                    tuple(chunk),
                )
                for chunk in chunks
            )
        )
        found: dict[str, list[DeviceRecord]] = {}
        for rows in pages:
            for row in rows:
                if row["incarnation"] is not None:
                    found.setdefault(row["user_id"], []).append(_device(row))
        for devices in found.values():
            devices.sort(key=lambda d: d.device_id)
        return found

    async def identity_key(self, user_id: str) -> bytes | None:
        rows = await self._cql.execute(
            "identity_key", "SELECT identity_key FROM accounts WHERE user_id = ?", (user_id,)
        )
        key = rows[0]["identity_key"] if rows else None
        return None if key is None else bytes(key)

    async def is_current(self, device: DeviceAddress, incarnation: str) -> bool:
        return await self._incarnation(device) == incarnation

    async def touch(self, device: DeviceAddress, now: float) -> None:
        # One write, no read first: a device unlinked meanwhile is left with a row holding
        # only last_seen_at, which every reader skips (no incarnation). A read first would
        # not close that race either, and it cost every handshake a round trip.
        await self._cql.execute(
            "touch_device",
            f"UPDATE devices SET last_seen_at = ? {_WHERE_DEVICE}",
            (now, device.user_id, device.device_id),
        )

    async def _incarnation(self, device: DeviceAddress) -> str | None:
        rows = await self._cql.execute(
            "device_incarnation",
            f"SELECT incarnation FROM devices {_WHERE_DEVICE}",
            (device.user_id, device.device_id),
        )
        return rows[0]["incarnation"] if rows else None

    # --- links ---------------------------------------------------------------------------

    async def create_link(self, link: LinkRequest) -> LinkRequest:
        ttl = _ttl(link.expires_at, time.time())
        applied, seen = await self._cql.conditional(
            "create_link",
            "INSERT INTO device_links_by_request (request_id, ephemeral_key, link_code) "
            "VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?",
            (link.request_id, link.ephemeral_key, link.link_code, ttl),
        )
        if applied:
            await self._write_link(link, ttl)
            return link
        row = await self._link_row(seen["link_code"])
        if row is None:
            # The first attempt stopped between its claim and the link itself.
            link = dataclasses.replace(link, link_code=seen["link_code"])
            await self._write_link(link, ttl)
            return link
        stored = _link(row)
        if stored.secret_hash != link.secret_hash:
            # A retried BeginLink keeps its code; only the latest secret is valid.
            await self._rotate_secret(stored, link.secret_hash, ttl)
        return dataclasses.replace(stored, secret_hash=link.secret_hash)

    async def get_link(
        self, *, link_code: str = "", secret_hash: bytes = b""
    ) -> LinkRequest | None:
        if link_code:
            row = await self._link_row(link_code)
            return _link(row) if row else None
        if not secret_hash:
            return None
        rows = await self._cql.execute(
            "get_link",
            "SELECT link_code FROM device_links_by_secret WHERE secret_hash = ?",
            (secret_hash,),
        )
        row = await self._link_row(rows[0]["link_code"]) if rows else None
        # A lookup row left by a rotated secret still points to the link: check.
        return _link(row) if row and bytes(row["secret_hash"]) == secret_hash else None

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
        link = await self._get_link(link_code)
        if link.approved_user_id is not None:
            return _approved_by(link, user_id, request_id)
        device_id = await self._reserve(link, user_id, max_devices=max_devices, now=now)
        applied, seen = await self._cql.conditional(
            "approve_link",
            "UPDATE device_links USING TTL ? SET approved_user_id = ?, approved_request_id = ?, "
            "provisioning = ?, device_id = ? WHERE link_code = ? "
            "IF request_id = ? AND approved_user_id = null",
            (
                _ttl(link.expires_at, now),
                user_id,
                request_id,
                provisioning,
                device_id,
                link_code,
                link.request_id,
            ),
        )
        if applied:
            return dataclasses.replace(
                link,
                approved_user_id=user_id,
                approved_request_id=request_id,
                provisioning=provisioning,
                device_id=device_id,
            )
        if seen.get("approved_user_id") != user_id:
            # Another account won the link: its place here is not needed.
            await self._release(user_id, link_code)
        return _approved_by(await self._get_link(link_code), user_id, request_id)

    async def complete_link(
        self, link_code: str, *, request_id: str, device: NewDevice, now: float
    ) -> DeviceAddress:
        row = await self._link_row(link_code)
        if row is None:
            raise LinkCodeNotFound("no pending link has this code")
        link = _link(row)
        if link.approved_user_id is None or link.device_id is None:
            raise LinkNotApproved("the link is not approved")
        address = DeviceAddress(link.approved_user_id, link.device_id)
        if link.completed_request_id is None:
            row = await self._claim_completion(link, request_id, device.incarnation, now)
        if row["completed_request_id"] != request_id:
            raise LinkAlreadyApproved("this link was already completed")
        if not row["device_created"]:
            incarnation = row["incarnation"] or device.incarnation
            device = dataclasses.replace(device, incarnation=incarnation)
            await self._create_device(address, link, device, now)
        await self._release(address.user_id, link_code)
        return address

    async def unlink(self, device: DeviceAddress) -> bool:
        incarnation = await self._incarnation(device)
        if incarnation is None:
            return False
        await delete_device_data(self._cql, device)
        applied, _ = await self._cql.conditional(
            "unlink",
            f"DELETE FROM devices {_WHERE_DEVICE} IF incarnation = ?",
            (device.user_id, device.device_id, incarnation),
        )
        return applied

    # --- link rows -----------------------------------------------------------------------

    async def _link_row(self, link_code: str) -> Row | None:
        """The link's row, or None (also for what a TTL left of a partly expired row)."""
        rows = await self._cql.execute(
            "get_link", "SELECT * FROM device_links WHERE link_code = ?", (link_code,)
        )
        if not rows or rows[0]["request_id"] is None or rows[0]["secret_hash"] is None:
            return None
        return rows[0]

    async def _get_link(self, link_code: str) -> LinkRequest:
        row = await self._link_row(link_code)
        if row is None:
            raise LinkCodeNotFound("no pending link has this code")
        return _link(row)

    async def _write_link(self, link: LinkRequest, ttl: int) -> None:
        await self._cql.batch(
            "create_link",
            [
                Statement(
                    "INSERT INTO device_links (link_code, secret_hash, request_id, "
                    "ephemeral_key, kind, expires_at) VALUES (?, ?, ?, ?, ?, ?) USING TTL ?",
                    (
                        link.link_code,
                        link.secret_hash,
                        link.request_id,
                        link.ephemeral_key,
                        int(link.kind),
                        link.expires_at,
                        ttl,
                    ),
                ),
                self._secret_lookup(link.secret_hash, link.link_code, ttl),
            ],
        )

    async def _rotate_secret(self, link: LinkRequest, secret_hash: bytes, ttl: int) -> None:
        await self._cql.batch(
            "rotate_link_secret",
            [
                self._secret_lookup(secret_hash, link.link_code, ttl),
                Statement(
                    "UPDATE device_links USING TTL ? SET secret_hash = ? WHERE link_code = ?",
                    (ttl, secret_hash, link.link_code),
                ),
                Statement(
                    "DELETE FROM device_links_by_secret WHERE secret_hash = ?",
                    (link.secret_hash,),
                ),
            ],
        )

    @staticmethod
    def _secret_lookup(secret_hash: bytes, link_code: str, ttl: int) -> Statement:
        return Statement(
            "INSERT INTO device_links_by_secret (secret_hash, link_code) VALUES (?, ?) USING TTL ?",
            (secret_hash, link_code, ttl),
        )

    # --- approval ------------------------------------------------------------------------

    async def _reserve(
        self, link: LinkRequest, user_id: str, *, max_devices: int, now: float
    ) -> int:
        """Holds a place under the device limit for `link` (or finds the place an earlier
        attempt held) and returns the device id reserved for it."""
        device_id: int | None = None
        while True:
            # Reservations are read before devices: a completion writes its device before
            # it releases its reservation, so it is counted in one or the other.
            version, pending = await self._pending(user_id)
            if link.link_code in pending:
                return int(pending[link.link_code]["device_id"])
            linked = await self._linked(user_id, pending.values(), now)
            if linked >= max_devices:
                raise DeviceLimitReached(
                    "linked devices",
                    setting="devices.max_linked_devices",
                    limit=max_devices,
                    actual=linked + 1,
                )
            if device_id is None:
                device_id = await self._allocate_device_id(user_id)
            reservation = conditional_batch(
                [
                    Statement(
                        "UPDATE device_links_by_approver SET version = ? WHERE user_id = ? "
                        "IF version = ?",
                        ((version or 0) + 1, user_id, version),
                    ),
                    Statement(
                        "INSERT INTO device_links_by_approver (user_id, link_code, device_id, "
                        "expires_at) VALUES (?, ?, ?, ?) USING TTL ?",
                        (
                            user_id,
                            link.link_code,
                            device_id,
                            link.expires_at,
                            _ttl(link.expires_at, now),
                        ),
                    ),
                ]
            )
            applied, _ = await self._cql.conditional(
                "reserve_device", reservation.cql, reservation.params
            )
            if applied:
                return device_id

    async def _pending(self, user_id: str) -> tuple[int | None, dict[str, Row]]:
        """The approver partition's version and its reservations by link code."""
        rows = await self._cql.execute_all(
            "pending_links",
            "SELECT link_code, device_id, expires_at, version FROM device_links_by_approver "
            "WHERE user_id = ?",
            (user_id,),
        )
        version = rows[0]["version"] if rows else None
        return version, {r["link_code"]: r for r in rows if r["link_code"] is not None}

    async def _linked(self, user_id: str, pending: Iterable[Row], now: float) -> int:
        """Devices besides the primary, counting unexpired reservations (a reservation
        whose device exists already is counted once)."""
        devices = await self.list_devices(user_id)
        ids = {d.device_id for d in devices if d.device_id != PRIMARY_DEVICE_ID}
        ids.update(r["device_id"] for r in pending if r["expires_at"] > now)
        return len(ids)

    async def _allocate_device_id(self, user_id: str) -> int:
        rows = await self._cql.execute(
            "next_device_id", "SELECT next_device_id FROM accounts WHERE user_id = ?", (user_id,)
        )
        current = rows[0]["next_device_id"] if rows else None
        while current is not None:
            applied, seen = await self._cql.conditional(
                "allocate_device_id",
                "UPDATE accounts SET next_device_id = ? WHERE user_id = ? IF next_device_id = ?",
                (current + 1, user_id, current),
            )
            if applied:
                return int(current)
            current = seen.get("next_device_id")
        raise UserNotFound(user_id)

    async def _release(self, user_id: str, link_code: str) -> None:
        """Gives up the place held for a link (it was completed, or approved by another)."""
        await self._cql.conditional(
            "release_device",
            "DELETE FROM device_links_by_approver WHERE user_id = ? AND link_code = ? IF EXISTS",
            (user_id, link_code),
        )

    # --- completion ----------------------------------------------------------------------

    async def _claim_completion(
        self, link: LinkRequest, request_id: str, incarnation: str, now: float
    ) -> Row:
        """Marks the link completed by `request_id` unless another request did first;
        returns the link's row as it is then."""
        await self._cql.conditional(
            "complete_link",
            "UPDATE device_links USING TTL ? SET incarnation = ?, completed_request_id = ? "
            "WHERE link_code = ? IF request_id = ? AND completed_request_id = null",
            (_ttl(link.expires_at, now), incarnation, request_id, link.link_code, link.request_id),
        )
        row = await self._link_row(link.link_code)
        if row is None:
            raise LinkCodeNotFound("no pending link has this code")
        return row

    async def _create_device(
        self, address: DeviceAddress, link: LinkRequest, device: NewDevice, now: float
    ) -> None:
        await write_device_keys(self._cql, address, device.keys)
        await self._cql.batch(
            "create_device",
            [
                Statement(
                    "INSERT INTO devices (user_id, device_id, incarnation, registration_id, "
                    "kind, encrypted_name, created_at, last_seen_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        address.user_id,
                        address.device_id,
                        device.incarnation,
                        device.registration_id,
                        int(device.kind),
                        device.encrypted_name,
                        now,
                        now,
                    ),
                ),
                Statement(
                    "UPDATE device_links USING TTL ? SET device_created = true WHERE link_code = ?",
                    (_ttl(link.expires_at, now), link.link_code),
                ),
            ],
        )
