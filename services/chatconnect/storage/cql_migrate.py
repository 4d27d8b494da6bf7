"""Versioned schema migrations of the ScyllaDB keyspace: `chatconnect migrate`.

Servers never change the schema themselves; at start they check that the keyspace is at
the version this release needs and refuse to serve otherwise (rolling upgrades run
`chatconnect migrate` first, as a job, then roll the servers).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cassandra import InvalidRequest

from chatconnect.storage.cql import CqlSession
from chatconnect.storage.cql_config import ScyllaConfig, parse_replication
from chatconnect.storage.cql_schema import MIGRATIONS, MIGRATIONS_TABLE, AddColumns

Progress = Callable[[str], None]


class SchemaOutOfDate(Exception):
    """The keyspace is not at the schema version this release needs."""


async def migrate(config: ScyllaConfig, *, timeout: float, progress: Progress) -> int:
    """Creates the keyspace if needed and applies every pending migration; returns the
    schema version now in force."""
    replication = parse_replication(config.replication)
    session = await CqlSession.connect(config, timeout=timeout, keyspace=False)
    try:
        for datacenter, replicas in replication.items():
            nodes = session.hosts_in(datacenter)
            if nodes < replicas:
                progress(
                    f"warning: datacenter {datacenter} has {nodes} node(s) but scylla.replication "
                    f"asks for {replicas} replicas; LOCAL_QUORUM writes will fail until it has "
                    f"at least {replicas // 2 + 1}"
                )
        options = ", ".join(f"'{dc}': {n}" for dc, n in replication.items())
        progress(f"keyspace {config.keyspace}: NetworkTopologyStrategy {{{options}}}")
        await session.change_schema(
            f"CREATE KEYSPACE IF NOT EXISTS {config.keyspace} WITH replication = "
            f"{{'class': 'NetworkTopologyStrategy', {options}}}"
        )
        await session.change_schema(f"USE {config.keyspace}")
        await session.change_schema(MIGRATIONS_TABLE)
        current = await _version(session)
        if current > len(MIGRATIONS):
            raise SchemaOutOfDate(
                f"keyspace {config.keyspace} is at schema version {current}, newer than this "
                f"release knows ({len(MIGRATIONS)}); upgrade chatconnect"
            )
        if current == len(MIGRATIONS):
            progress(f"schema is up to date (version {current})")
        for version in range(current + 1, len(MIGRATIONS) + 1):
            migration = MIGRATIONS[version - 1]
            started = time.monotonic()
            progress(f"applying {version}/{len(MIGRATIONS)}: {migration.description}")
            for statement in migration.statements:
                # Every statement is IF NOT EXISTS (or AddColumns, which checks first), so
                # an interrupted run can simply rerun.
                if isinstance(statement, AddColumns):
                    await _add_columns(session, config.keyspace, statement)
                else:
                    await session.change_schema(statement)
            await session.execute(
                "record_migration",
                f"INSERT INTO {config.keyspace}.schema_migrations "
                "(version, description, applied_at) VALUES (?, ?, toTimestamp(now()))",
                (version, migration.description),
            )
            progress(f"applied {version} in {time.monotonic() - started:.1f}s")
        return len(MIGRATIONS)
    finally:
        await session.close()


async def _add_columns(session: CqlSession, keyspace: str, change: AddColumns) -> None:
    rows = await session.execute_all(
        "schema_columns",
        "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
        (keyspace, change.table),
    )
    present = {r["column_name"] for r in rows}
    missing = [f"{name} {kind}" for name, kind in change.columns if name not in present]
    if missing:
        await session.change_schema(
            f"ALTER TABLE {keyspace}.{change.table} ADD ({', '.join(missing)})"
        )


async def check_schema(session: CqlSession) -> None:
    """Raises SchemaOutOfDate unless the keyspace is at this release's schema version."""
    try:
        current = await _version(session)
    except InvalidRequest as exc:  # the table itself is missing: never migrated
        raise SchemaOutOfDate(
            f"keyspace {session.keyspace} has no schema yet: run `chatconnect migrate`"
        ) from exc
    if current != len(MIGRATIONS):
        raise SchemaOutOfDate(
            f"keyspace {session.keyspace} is at schema version {current}, this release needs "
            f"{len(MIGRATIONS)}: run `chatconnect migrate`"
            if current < len(MIGRATIONS)
            else f"keyspace {session.keyspace} is at schema version {current}, newer than "
            f"this release ({len(MIGRATIONS)}); upgrade chatconnect"
        )


async def _version(session: CqlSession) -> int:
    rows = await session.execute_all(
        "schema_version", f"SELECT version FROM {session.keyspace}.schema_migrations"
    )
    return max((int(r["version"]) for r in rows), default=0)
