"""The ScyllaDB key store.

`signed_prekeys` has a partition per account (a row per device); `one_time_prekeys` a
partition per device (a row per key) with a static `version`.

* Only lightweight transactions (LWTs) write `one_time_prekeys`. An LWT write carries its
  Paxos ballot's timestamp and a plain write the client's clock: mixed, a client clock a
  little ahead could make an inserted key outlive the delete that handed it out.
* A key is handed out by `DELETE ... IF public_key = ?`: of concurrent takers exactly one
  sees it applied and the others try another key, so no one-time prekey is ever handed
  out twice.
* Keys are added in one conditional batch that bumps `version` (`IF version = ?`): the
  uploads of one device are serialized, so ids already stored are really skipped and
  `max_stored` is never exceeded. A new device's initial keys are written `IF version =
  null`, that is once: a retried link can never bring back a key handed out meanwhile.
  Removing a device's keys is a conditional batch as well.
* `signed_prekeys` rows are plain upserts: replacing a signed prekey is idempotent.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence

from chatconnect.keys.domain.models import DeviceKeys, PreKey, PreKeyBundle, SignedPreKey
from chatconnect.keys.ports import KeyStore
from chatconnect.model import DeviceAddress
from chatconnect.storage.cql import CqlSession, Statement

# One-time prekeys read per attempt at taking one: concurrent takers that lose the race
# for the first key spread over the others.
CANDIDATES = 8

_UPSERT_SIGNED = (
    "INSERT INTO signed_prekeys (user_id, device_id, key_id, public_key, signature) "
    "VALUES (?, ?, ?, ?, ?)"
)
_BUMP_VERSION = (
    "UPDATE one_time_prekeys SET version = ? WHERE user_id = ? AND device_id = ? IF version = ?"
)
_INSERT_ONE_TIME = (
    "INSERT INTO one_time_prekeys (user_id, device_id, key_id, public_key) VALUES (?, ?, ?, ?)"
)
_WHERE_DEVICE = "WHERE user_id = ? AND device_id = ?"


def conditional_batch(statements: Sequence[Statement]) -> Statement:
    """Statements on one partition, at least one with an IF, as one BATCH statement (so
    `CqlSession.conditional` reports whether it applied)."""
    cql = " ".join(["BEGIN BATCH", *(f"{s.cql};" for s in statements), "APPLY BATCH"])
    return Statement(cql, [p for s in statements for p in s.params])


def _padded(keys: Sequence[PreKey]) -> list[PreKey]:
    """`keys`, the last repeated up to a power of two: a batch of n inserts is a statement
    of its own, and this keeps the prepared ones few (writing a row twice is harmless)."""
    size = 1 << max(len(keys) - 1, 0).bit_length()
    return [*keys, *[keys[-1]] * (size - len(keys))]


def _fresh(keys: Iterable[PreKey], stored: set[int]) -> list[PreKey]:
    """`keys` without ids already stored, the first of repeated ids kept."""
    seen = set(stored)
    fresh: list[PreKey] = []
    for key in keys:
        if key.key_id not in seen:
            seen.add(key.key_id)
            fresh.append(key)
    return fresh


async def _add_one_time(
    cql: CqlSession, device: DeviceAddress, keys: Sequence[PreKey], version: int | None
) -> bool:
    """Inserts `keys` if the partition is still at `version`; whether it was."""
    params = (device.user_id, device.device_id)
    statements = [Statement(_BUMP_VERSION, ((version or 0) + 1, *params, version))]
    statements += [
        Statement(_INSERT_ONE_TIME, (*params, k.key_id, k.public_key)) for k in _padded(keys)
    ]
    batch = conditional_batch(statements)
    applied, _ = await cql.conditional("add_prekeys", batch.cql, batch.params)
    return applied


async def write_device_keys(cql: CqlSession, device: DeviceAddress, keys: DeviceKeys) -> None:
    """Stores a new device's signed prekey and, unless the device already has had some,
    its one-time prekeys (for registration and linking; safe to repeat)."""
    spk = keys.signed_prekey
    await cql.execute(
        "set_signed_prekey",
        _UPSERT_SIGNED,
        (device.user_id, device.device_id, spk.key_id, spk.public_key, spk.signature),
    )
    fresh = _fresh(keys.one_time_prekeys, set())
    if fresh:
        await _add_one_time(cql, device, fresh, None)


async def delete_device_keys(cql: CqlSession, device: DeviceAddress) -> None:
    """Removes a device's signed prekey and every one-time prekey."""
    params = (device.user_id, device.device_id)
    await cql.execute("delete_signed_prekey", f"DELETE FROM signed_prekeys {_WHERE_DEVICE}", params)
    while True:
        version, _ = await _stored(cql, device)
        batch = conditional_batch(
            [
                Statement(
                    f"DELETE version FROM one_time_prekeys {_WHERE_DEVICE} IF version = ?",
                    (*params, version),
                ),
                Statement(f"DELETE FROM one_time_prekeys {_WHERE_DEVICE}", params),
            ]
        )
        applied, _ = await cql.conditional("delete_prekeys", batch.cql, batch.params)
        if applied:
            return


async def _stored(cql: CqlSession, device: DeviceAddress) -> tuple[int | None, set[int]]:
    """The partition's version and the ids of its one-time prekeys."""
    rows = await cql.execute_all(
        "stored_prekeys",
        f"SELECT key_id, version FROM one_time_prekeys {_WHERE_DEVICE}",
        (device.user_id, device.device_id),
    )
    version = rows[0]["version"] if rows else None
    return version, {r["key_id"] for r in rows if r["key_id"] is not None}


def _attempt_order(candidates: list[PreKey]) -> list[PreKey]:
    """The lowest id first (as a lone taker gets it), then the rest in random order."""
    rest = candidates[1:]
    random.shuffle(rest)
    return [candidates[0], *rest]


class ScyllaKeyStore(KeyStore):
    """Prekeys in ScyllaDB."""

    def __init__(self, cql: CqlSession) -> None:
        self._cql = cql

    async def set_signed_prekey(self, device: DeviceAddress, key: SignedPreKey) -> None:
        await self._cql.execute(
            "set_signed_prekey",
            _UPSERT_SIGNED,
            (device.user_id, device.device_id, key.key_id, key.public_key, key.signature),
        )

    async def add_prekeys(
        self, device: DeviceAddress, keys: Sequence[PreKey], *, max_stored: int
    ) -> int:
        while True:
            version, stored = await _stored(self._cql, device)
            room = max(max_stored - len(stored), 0)
            fresh = _fresh(list(keys)[:room], stored)
            if not fresh:
                return len(stored)
            if await _add_one_time(self._cql, device, fresh, version):
                return await self.count(device)

    async def take_bundles(self, user_id: str, device_ids: Sequence[int]) -> list[PreKeyBundle]:
        devices, signed, identity_key = await asyncio.gather(
            self._registration_ids(user_id), self._signed_prekeys(user_id), self._identity(user_id)
        )
        if identity_key is None:
            return []
        wanted = [d for d in (device_ids or sorted(devices)) if d in devices and d in signed]
        taken = await asyncio.gather(*(self._take(DeviceAddress(user_id, d)) for d in wanted))
        return [
            PreKeyBundle(d, devices[d], identity_key, signed[d], one_time)
            for d, one_time in zip(wanted, taken, strict=True)
        ]

    async def count(self, device: DeviceAddress) -> int:
        rows = await self._cql.execute(
            "count_prekeys",
            f"SELECT COUNT(key_id) AS n FROM one_time_prekeys {_WHERE_DEVICE}",
            (device.user_id, device.device_id),
        )
        return int(rows[0]["n"]) if rows else 0

    async def _take(self, device: DeviceAddress) -> PreKey | None:
        """Consumes one one-time prekey of `device` (the lowest id when uncontended)."""
        params = (device.user_id, device.device_id)
        while True:
            rows = await self._cql.execute(
                "take_prekey",
                f"SELECT key_id, public_key FROM one_time_prekeys {_WHERE_DEVICE} LIMIT ?",
                (*params, CANDIDATES),
            )
            candidates = [
                PreKey(r["key_id"], bytes(r["public_key"])) for r in rows if r["key_id"] is not None
            ]
            if not candidates:
                return None
            for key in _attempt_order(candidates):
                applied, _ = await self._cql.conditional(
                    "take_prekey",
                    f"DELETE FROM one_time_prekeys {_WHERE_DEVICE} AND key_id = ? "
                    "IF public_key = ?",
                    (*params, key.key_id, key.public_key),
                )
                if applied:
                    return key

    async def _registration_ids(self, user_id: str) -> dict[int, int]:
        rows = await self._cql.execute_all(
            "bundle_devices",
            "SELECT device_id, registration_id, incarnation FROM devices WHERE user_id = ?",
            (user_id,),
        )
        return {r["device_id"]: r["registration_id"] for r in rows if r["incarnation"] is not None}

    async def _signed_prekeys(self, user_id: str) -> dict[int, SignedPreKey]:
        rows = await self._cql.execute_all(
            "bundle_signed_prekeys",
            "SELECT device_id, key_id, public_key, signature FROM signed_prekeys WHERE user_id = ?",
            (user_id,),
        )
        return {
            r["device_id"]: SignedPreKey(r["key_id"], bytes(r["public_key"]), bytes(r["signature"]))
            for r in rows
        }

    async def _identity(self, user_id: str) -> bytes | None:
        rows = await self._cql.execute(
            "bundle_identity_key", "SELECT identity_key FROM accounts WHERE user_id = ?", (user_id,)
        )
        return bytes(rows[0]["identity_key"]) if rows and rows[0]["identity_key"] else None
