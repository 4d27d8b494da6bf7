"""An asyncio face on the scylla-driver session, shared by every ScyllaDB adapter.

* Protocol v4, token-aware routing inside the local datacenter, LOCAL_QUORUM for reads and
  writes and LOCAL_SERIAL for lightweight transactions.
* Every statement is prepared once and reused.
* A semaphore bounds the requests in flight, so a burst queues here instead of overloading
  the cluster or the driver's connections.
* Driver failures (no replica, timeouts, lost connections) become `StoreUnavailable`, which
  the edge turns into UNAVAILABLE with a retry hint; the callers' writes are idempotent, so
  retrying is always safe.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cassandra import (
    ConsistencyLevel,
    DriverException,
    OperationTimedOut,
    RequestExecutionException,
)
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    ResponseFuture,
    Session,
)
from cassandra.connection import ConnectionException
from cassandra.policies import (
    ConstantReconnectionPolicy,
    DCAwareRoundRobinPolicy,
    TokenAwarePolicy,
)
from cassandra.query import (
    BatchStatement,
    BatchType,
    PreparedStatement,
    SimpleStatement,
    dict_factory,
)

from chatconnect.runtime.deadline import within
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.runtime.telemetry import storage_call
from chatconnect.storage.cql_config import ScyllaConfig

Row = dict[str, Any]

# Failures of the cluster, not of the statement: the request may be retried. (A malformed
# statement raises InvalidRequest, which is a bug and stays an internal error.)
UNAVAILABLE = (
    NoHostAvailable,
    RequestExecutionException,
    OperationTimedOut,
    ConnectionException,
    OSError,
)

PROTOCOL_VERSION = 4


def ttl(seconds: float) -> int:
    """The CQL TTL of a record that must live `seconds` longer: at least one second, since a
    TTL of 0 would mean forever."""
    return max(1, math.ceil(seconds))


class KeyspaceMissing(Exception):
    """The configured keyspace has not been created (by `chatconnect migrate`)."""


@dataclass(frozen=True)
class Statement:
    """One CQL statement and its bound values."""

    cql: str
    params: Sequence[Any] = ()


class CqlSession:
    """A connected session; open with `CqlSession.connect`."""

    def __init__(self, cluster: Cluster, session: Session, config: ScyllaConfig, timeout: float):
        self._cluster = cluster
        self._session = session
        self._timeout = timeout
        self._prepared: dict[str, PreparedStatement] = {}
        self._prepare_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(config.max_in_flight)
        self.keyspace = config.keyspace

    @classmethod
    async def connect(
        cls, config: ScyllaConfig, *, timeout: float, keyspace: bool = True
    ) -> CqlSession:
        """Connects to the cluster (and the keyspace, unless `keyspace` is False)."""
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(
                DCAwareRoundRobinPolicy(local_dc=config.local_dc)
            ),
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
            request_timeout=timeout,
            row_factory=dict_factory,
        )
        auth = PlainTextAuthProvider(config.username, config.password) if config.username else None
        cluster = Cluster(
            contact_points=[h.strip() for h in config.contact_points.split(",") if h.strip()],
            port=config.port,
            protocol_version=PROTOCOL_VERSION,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            auth_provider=auth,
            connect_timeout=config.connect_timeout_seconds,
            control_connection_timeout=config.connect_timeout_seconds,
            # A restarted node is back in use within a second, so clients' retries succeed.
            reconnection_policy=ConstantReconnectionPolicy(1.0, max_attempts=None),
            idle_heartbeat_interval=5,
        )
        loop = asyncio.get_running_loop()
        try:
            session = await loop.run_in_executor(None, cluster.connect)
        except (*UNAVAILABLE, DriverException) as exc:
            cluster.shutdown()
            raise StoreUnavailable(
                f"cannot reach ScyllaDB at {config.contact_points}:{config.port} "
                f"(scylla.contact_points): {exc}"
            ) from exc
        if keyspace:
            if config.keyspace not in cluster.metadata.keyspaces:
                cluster.shutdown()
                raise KeyspaceMissing(
                    f"keyspace {config.keyspace} does not exist: run `chatconnect migrate`"
                )
            await loop.run_in_executor(None, session.set_keyspace, config.keyspace)
        return cls(cluster, session, config, timeout)

    async def close(self) -> None:
        """Closes every connection."""
        await asyncio.get_running_loop().run_in_executor(None, self._cluster.shutdown)

    def hosts_in(self, datacenter: str) -> int:
        """How many nodes of `datacenter` the driver knows."""
        return sum(1 for h in self._cluster.metadata.all_hosts() if h.datacenter == datacenter)

    async def prepare(self, cql: str) -> PreparedStatement:
        """The prepared form of `cql`, prepared on first use."""
        prepared = self._prepared.get(cql)
        if prepared is not None:
            return prepared
        async with self._prepare_lock:
            if cql not in self._prepared:
                loop = asyncio.get_running_loop()
                try:
                    self._prepared[cql] = await loop.run_in_executor(
                        None, self._session.prepare, cql
                    )
                except UNAVAILABLE as exc:
                    raise StoreUnavailable(
                        f"ScyllaDB could not prepare a statement: {exc}"
                    ) from exc
            return self._prepared[cql]

    async def execute(
        self,
        operation: str,
        cql: str,
        params: Sequence[Any] = (),
    ) -> list[Row]:
        """Runs one statement; returns the rows of its first page (write LIMITs so that
        the first page is all you need, or use `execute_all`)."""
        with storage_call("scylla", operation):
            return await self._run((await self.prepare(cql)).bind(params))

    async def execute_all(self, operation: str, cql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Runs a query and returns the rows of every page (for small partitions)."""
        with storage_call("scylla", operation):
            bound = (await self.prepare(cql)).bind(params)
            rows: list[Row] = []
            async with self._slots:
                future = self._session.execute_async(bound)
                while True:
                    page = await self._wait(future)
                    rows.extend(page)
                    if not future.has_more_pages:
                        return rows
                    future.start_fetching_next_page()

    async def conditional(
        self, operation: str, cql: str, params: Sequence[Any] = ()
    ) -> tuple[bool, Row]:
        """Runs a lightweight transaction (IF ...): whether it applied, and the row it saw."""
        rows = await self.execute(operation, cql, params)
        row = rows[0] if rows else {"[applied]": False}
        return bool(row.get("[applied]")), row

    async def change_schema(self, cql: str) -> None:
        """Runs one schema statement (not prepared) and waits for schema agreement."""
        with storage_call("scylla", "change_schema"):
            await self._run(SimpleStatement(cql))

    async def execute_many(self, operation: str, statements: Sequence[Statement]) -> None:
        """Runs independent statements concurrently (bounded by the in-flight limit)."""
        if not statements:
            return
        with storage_call("scylla", operation):
            bound = [await self._bind(s) for s in statements]
            await asyncio.gather(*(self._run(b) for b in bound))

    async def batch(
        self, operation: str, statements: Sequence[Statement], *, logged: bool = True
    ) -> None:
        """A batch: logged, every statement applies eventually or none does; unlogged (only
        for statements on one partition key, where it is atomic anyway) it skips the batch
        log."""
        if not statements:
            return
        with storage_call("scylla", operation):
            await self._run(await self._batch(statements, logged=logged))

    async def conditional_batch(
        self, operation: str, statements: Sequence[Statement]
    ) -> tuple[bool, Row]:
        """A batch with IF conditions, all on one partition of one table: it applies as one
        lightweight transaction or not at all. Returns whether it applied, and a row it saw."""
        with storage_call("scylla", operation):
            rows = await self._run(await self._batch(statements, logged=False))
        row = rows[0] if rows else {"[applied]": False}
        return bool(row.get("[applied]")), row

    async def batches(self, operation: str, batches: Sequence[Sequence[Statement]]) -> None:
        """Several single-partition (unlogged) batches, run concurrently."""
        with storage_call("scylla", operation):
            built = [await self._batch(b, logged=False) for b in batches if b]
            await asyncio.gather(*(self._run(b) for b in built))

    async def _batch(self, statements: Sequence[Statement], *, logged: bool) -> BatchStatement:
        batch = BatchStatement(batch_type=BatchType.LOGGED if logged else BatchType.UNLOGGED)
        for statement in statements:
            batch.add(await self._bind(statement))
        return batch

    async def _bind(self, statement: Statement) -> Any:
        return (await self.prepare(statement.cql)).bind(statement.params)

    async def _run(self, statement: Any) -> list[Row]:
        async with self._slots:
            return await self._wait(self._session.execute_async(statement))

    async def _wait(self, future: ResponseFuture) -> list[Row]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Row]] = loop.create_future()

        def ok(rows: Any) -> None:
            loop.call_soon_threadsafe(_settle, done, list(rows or []), None)

        def failed(exc: BaseException) -> None:
            loop.call_soon_threadsafe(_settle, done, None, exc)

        future.add_callbacks(ok, failed)
        try:
            return await within(loop, done, self._timeout + 1.0)
        except TimeoutError as exc:
            raise StoreUnavailable(f"ScyllaDB did not answer within {self._timeout}s") from exc
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"ScyllaDB failed: {type(exc).__name__}: {exc}") from exc


def _settle(
    done: asyncio.Future[list[Row]], rows: list[Row] | None, exc: BaseException | None
) -> None:
    if done.done():
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(rows or [])
