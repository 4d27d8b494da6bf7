"""Opens the durable stores the settings name: embedded SQLite, or ScyllaDB (+ Redis).

The only place that knows which adapter serves which storage port.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis

from chatconnect.devices.embedded import SqliteDeviceStore
from chatconnect.devices.ports import (
    DeviceStore,
    MessageOrigins,
    ReadMarkerStore,
    TombstoneStore,
)
from chatconnect.devices.sync_embedded import SqliteReadMarkerStore, SqliteTombstoneStore
from chatconnect.groups.embedded import SqliteGroupStore
from chatconnect.groups.ports import GroupStore
from chatconnect.keys.embedded import SqliteKeyStore
from chatconnect.keys.ports import KeyStore
from chatconnect.presence.embedded import SqliteLastSeenStore
from chatconnect.presence.ports import LastSeenStore
from chatconnect.router.embedded import SqliteMessageStore
from chatconnect.router.group_log_embedded import SqliteGroupLog
from chatconnect.router.origins_embedded import SqliteMessageOrigins
from chatconnect.router.ports import ExpirySweeper, GroupLog, MessageStore
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.runtime.logging import get_logger
from chatconnect.runtime.settings import Settings
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from chatconnect.users.embedded import SqliteAccountStore
from chatconnect.users.ports import AccountStore, PrivacyStore
from chatconnect.users.privacy_embedded import SqlitePrivacyStore

log = get_logger("stores")


@dataclass(frozen=True)
class Stores:
    """One adapter per durable port."""

    accounts: AccountStore
    devices: DeviceStore
    keys: KeyStore
    messages: MessageStore
    read_markers: ReadMarkerStore
    tombstones: TombstoneStore
    origins: MessageOrigins
    groups: GroupStore
    group_log: GroupLog
    privacy: PrivacyStore
    last_seen: LastSeenStore
    sweeper: ExpirySweeper | None
    """Set when retention must be enforced by a background sweep (the embedded store)."""


@contextlib.asynccontextmanager
async def open_stores(settings: Settings, redis: aioredis.Redis | None) -> AsyncIterator[Stores]:
    """The stores of `server.store`; closed on exit."""
    if settings.server.store == "scylla":
        if redis is None:
            raise SystemExit(
                "server.store=scylla needs server.bus=redis: inbox sequences are handed out "
                "by Redis (set CHATCONNECT_SERVER__BUS=redis and server.redis_url)"
            )
        async with _scylla(settings, redis) as stores:
            yield stores
        return
    db = await Database.open(
        settings.server.data_dir / "chatconnect.db",
        migrations=MIGRATIONS,
        synchronous=settings.server.sqlite_synchronous,
        timeout=settings.server.store_timeout_seconds,
        max_group=settings.server.sqlite_group_commit_max,
    )
    try:
        messages = SqliteMessageStore(db)
        single_process = settings.server.processes == 1
        devices = await SqliteDeviceStore.open(
            db, cached_users=settings.devices.device_list_cache_users if single_process else 0
        )
        yield Stores(
            accounts=SqliteAccountStore(db),
            devices=devices,
            keys=SqliteKeyStore(db),
            messages=messages,
            read_markers=SqliteReadMarkerStore(db),
            tombstones=SqliteTombstoneStore(db),
            origins=SqliteMessageOrigins(db),
            groups=SqliteGroupStore(db),
            group_log=SqliteGroupLog(db),
            privacy=SqlitePrivacyStore(db),
            last_seen=SqliteLastSeenStore(db),
            sweeper=messages,
        )
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def _scylla(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Stores]:
    # Imported here so the embedded mode never loads the driver.
    from chatconnect.devices.scylla import ScyllaDeviceStore
    from chatconnect.devices.sync_scylla import ScyllaReadMarkerStore, ScyllaTombstoneStore
    from chatconnect.groups.scylla import ScyllaGroupStore
    from chatconnect.keys.scylla import ScyllaKeyStore
    from chatconnect.presence.scylla import ScyllaLastSeenStore
    from chatconnect.router.group_log_scylla import ScyllaGroupLog
    from chatconnect.router.origins_scylla import ScyllaMessageOrigins
    from chatconnect.router.scylla import ScyllaMessageStore
    from chatconnect.router.sequences import SequenceAllocator
    from chatconnect.storage.cql import CqlSession, KeyspaceMissing
    from chatconnect.storage.cql_migrate import SchemaOutOfDate, check_schema
    from chatconnect.users.privacy_scylla import ScyllaPrivacyStore
    from chatconnect.users.scylla import ScyllaAccountStore

    config = settings.scylla
    try:
        cql = await CqlSession.connect(config, timeout=settings.server.store_timeout_seconds)
    except (StoreUnavailable, KeyspaceMissing) as exc:
        raise SystemExit(str(exc)) from None
    try:
        try:
            await check_schema(cql)
        except SchemaOutOfDate as exc:
            raise SystemExit(str(exc)) from None
        log.info(
            "store on scylla",
            contact_points=config.contact_points,
            keyspace=config.keyspace,
            local_dc=config.local_dc,
        )
        sequences = SequenceAllocator(redis, cql, block=config.sequence_block)
        yield Stores(
            accounts=ScyllaAccountStore(cql),
            devices=ScyllaDeviceStore(cql),
            keys=ScyllaKeyStore(cql),
            messages=ScyllaMessageStore(cql, sequences, gap_grace_seconds=config.gap_grace_seconds),
            read_markers=ScyllaReadMarkerStore(cql),
            tombstones=ScyllaTombstoneStore(cql),
            origins=ScyllaMessageOrigins(cql),
            groups=ScyllaGroupStore(cql),
            group_log=ScyllaGroupLog(cql),
            privacy=ScyllaPrivacyStore(cql),
            last_seen=ScyllaLastSeenStore(cql),
            sweeper=None,
        )
    finally:
        await cql.close()
