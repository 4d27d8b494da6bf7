"""Opens the durable stores the settings name: embedded SQLite, or ScyllaDB (+ Redis).

The only place that knows which adapter serves which storage port.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis

from chatconnect.devices.embedded import SqliteDeviceStore
from chatconnect.devices.ports import DeviceStore
from chatconnect.keys.embedded import SqliteKeyStore
from chatconnect.keys.ports import KeyStore
from chatconnect.router.embedded import SqliteMessageStore
from chatconnect.router.ports import ExpirySweeper, MessageStore
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.runtime.logging import get_logger
from chatconnect.runtime.settings import Settings
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from chatconnect.users.embedded import SqliteAccountStore
from chatconnect.users.ports import AccountStore

log = get_logger("stores")


@dataclass(frozen=True)
class Stores:
    """One adapter per durable port."""

    accounts: AccountStore
    devices: DeviceStore
    keys: KeyStore
    messages: MessageStore
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
    )
    try:
        messages = SqliteMessageStore(db)
        yield Stores(
            accounts=SqliteAccountStore(db),
            devices=SqliteDeviceStore(db),
            keys=SqliteKeyStore(db),
            messages=messages,
            sweeper=messages,
        )
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def _scylla(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Stores]:
    # Imported here so the embedded mode never loads the driver.
    from chatconnect.devices.scylla import ScyllaDeviceStore
    from chatconnect.keys.scylla import ScyllaKeyStore
    from chatconnect.router.scylla import ScyllaMessageStore
    from chatconnect.router.sequences import SequenceAllocator
    from chatconnect.storage.cql import CqlSession, KeyspaceMissing
    from chatconnect.storage.cql_migrate import SchemaOutOfDate, check_schema
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
            sweeper=None,
        )
    finally:
        await cql.close()
