"""The embedded store's device-list cache: it forgets a user's list when a committed write
changes it, by whatever code path, and never keeps a read that a change overtook."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatconnect.devices.device_cache import DeviceListCache
from chatconnect.devices.domain.models import DeviceRecord
from chatconnect.devices.embedded import SqliteDeviceStore
from chatconnect.model import DeviceKind
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from chatconnect.users.domain.models import Verification
from chatconnect.users.embedded import SqliteAccountStore
from tests.devices.backends import ALICE, NOW, primary_device

PHONE = "+15550109999"


def _record(user_id: str, device_id: int) -> DeviceRecord:
    return DeviceRecord(user_id, device_id, "inc", 1, DeviceKind.PHONE, b"", NOW, NOW)


def test_a_read_overtaken_by_a_change_is_not_kept() -> None:
    cache = DeviceListCache(10)
    read_at = cache.mark()
    cache.changed([ALICE])  # committed while the read was on its way
    cache.keep({ALICE: [_record(ALICE, 1)]}, read_at=read_at)
    assert cache.get(ALICE) is None
    cache.keep({ALICE: [_record(ALICE, 1)]}, read_at=cache.mark())
    assert cache.get(ALICE) == [_record(ALICE, 1)]


def test_the_least_recently_used_lists_go_first_and_callers_get_copies() -> None:
    cache = DeviceListCache(2)
    cache.keep({u: [_record(u, 1)] for u in ("a", "b")}, read_at=cache.mark())
    assert cache.get("a") is not None  # now "b" is the least recently used
    cache.keep({"c": [_record("c", 1)]}, read_at=cache.mark())
    assert cache.get("b") is None and len(cache) == 2
    kept = cache.get("a")
    assert kept is not None
    kept.clear()
    assert cache.get("a") == [_record("a", 1)]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(
        tmp_path / "db.sqlite", migrations=MIGRATIONS, synchronous="NORMAL"
    )
    try:
        yield database
    finally:
        await database.close()


async def _register(accounts: SqliteAccountStore, incarnation: str) -> str:
    """Registers PHONE (again): the second time takes the account over, replacing its
    devices with a new primary."""
    verification = Verification(
        verification_id=uuid.uuid4().hex,
        phone_number=PHONE,
        request_id=uuid.uuid4().hex,
        code_hash=b"",
        expires_at=NOW + 600,
    )
    primary = primary_device(ALICE)
    registration = await accounts.register(
        verification=verification,
        request_id=uuid.uuid4().hex,
        new_user_id=ALICE,
        primary=type(primary)(
            incarnation=incarnation,
            registration_id=primary.registration_id,
            kind=primary.kind,
            keys=primary.keys,
            encrypted_name=primary.encrypted_name,
        ),
        now=NOW,
    )
    return registration.user_id


async def test_a_change_written_by_the_users_service_is_seen_at_once(db: Database) -> None:
    """Registering the phone number again (a new phone) replaces the account's devices in
    the users service's own transaction, which knows nothing of the cache."""
    accounts = SqliteAccountStore(db)
    devices = await SqliteDeviceStore.open(db, cached_users=100)
    user_id = await _register(accounts, "first-phone")
    [first] = (await devices.list_devices_of([user_id]))[user_id]
    assert first.incarnation == "first-phone"
    await _register(accounts, "second-phone")
    [second] = (await devices.list_devices_of([user_id]))[user_id]
    assert second.incarnation == "second-phone"


async def test_another_program_can_still_write_the_file(db: Database, tmp_path: Path) -> None:
    """The watch's triggers live on the server's own connection only: a sqlite3 shell or
    a backup tool writing the devices table needs no function of ours."""
    await SqliteDeviceStore.open(db, cached_users=100)
    await _register(SqliteAccountStore(db), "first-phone")
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    try:
        other.execute("UPDATE devices SET last_seen_at = ?", (NOW + 1,))
        other.execute("DELETE FROM devices")
    finally:
        other.close()


async def test_the_watch_tells_after_the_commit_not_before(db: Database) -> None:
    told: list[set[str]] = []
    await db.watch("devices", "user_id", told.append)
    await _register(SqliteAccountStore(db), "first-phone")
    assert told == [{ALICE}]
    async with db.write("touch") as tx:
        await tx.execute("UPDATE devices SET last_seen_at = ?", (NOW + 5,))
        assert len(told) == 1  # written, not yet committed
    assert told == [{ALICE}, {ALICE}]
