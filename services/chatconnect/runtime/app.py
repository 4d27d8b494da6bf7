"""Builds the services of one process from settings: adapters, domain, servicers.

This is the only place that knows which adapter serves which port; domain code receives
ports and never chooses.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import grpc
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatconnect.bus.inprocess import InProcessBus, InProcessRateLimiter
from chatconnect.bus.ports import Bus, RateLimiter
from chatconnect.bus.redis import RedisBus, RedisRateLimiter
from chatconnect.devices.domain.deletion import DeletionService
from chatconnect.devices.domain.linking import DeviceService
from chatconnect.devices.domain.read_markers import ReadMarkerService
from chatconnect.devices.servicer import DevicesServicer
from chatconnect.devices.v1 import devices_service_pb2, devices_service_pb2_grpc
from chatconnect.gateway.servicer import GatewayServicer
from chatconnect.gateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc
from chatconnect.groups.cached_directory import CachedGroupDirectory
from chatconnect.groups.service import groups_servicer
from chatconnect.groups.v1 import groups_service_pb2, groups_service_pb2_grpc
from chatconnect.keys.domain.directory import KeyDirectory
from chatconnect.keys.servicer import KeysServicer
from chatconnect.keys.v1 import keys_service_pb2, keys_service_pb2_grpc
from chatconnect.model import system_clock
from chatconnect.presence.service import PresenceBackend, open_presence_backend, wire_presence
from chatconnect.presence.v1 import presence_service_pb2, presence_service_pb2_grpc
from chatconnect.router.domain.group_reading import GroupReading
from chatconnect.router.domain.group_sending import GroupSender
from chatconnect.router.domain.inbox import InboxService
from chatconnect.router.domain.notices import NoticeService
from chatconnect.router.domain.sending import Deliverer, SendService
from chatconnect.router.ports import ExpirySweeper, ReceiptTally
from chatconnect.router.servicer import RouterServicer
from chatconnect.router.tally_inprocess import InProcessReceiptTally
from chatconnect.router.tally_redis import RedisReceiptTally
from chatconnect.router.v1 import router_service_pb2, router_service_pb2_grpc
from chatconnect.runtime.auth import Authenticator, TokenIssuer, load_or_create_signing_key
from chatconnect.runtime.load_reports import GATEWAY, report_load, withdraw_load
from chatconnect.runtime.logging import get_logger
from chatconnect.runtime.settings import Settings
from chatconnect.runtime.stores import Stores, open_stores
from chatconnect.sharding.fence import EpochFence, EpochSource, NoShardMap
from chatconnect.sharding.source import FileShardMapSource, ShardMapMissing
from chatconnect.users.domain.privacy import PrivacyService
from chatconnect.users.domain.registration import RegistrationService
from chatconnect.users.domain.sessions import SessionIssuer
from chatconnect.users.embedded import LogVerificationProvider
from chatconnect.users.servicer import UsersServicer
from chatconnect.users.v1 import users_service_pb2, users_service_pb2_grpc

log = get_logger("app")

SERVED = ("gateway", "router", "users", "devices", "keys", "groups", "presence")
"""Services this release implements."""

PLANNED = ("media", "calls", "status", "notifications", "backup")
"""Services whose contracts exist but that this release does not serve yet."""


@dataclass
class Registration:
    """One servicer and how to add it to a gRPC server."""

    name: str
    full_name: str
    add: Callable[[grpc.aio.Server], None]


@dataclass
class App:
    """The wired services of one process."""

    registrations: list[Registration]
    background: list[Callable[[], Any]] = field(default_factory=list)
    gateway: GatewayServicer | None = None


def _registration(
    name: str, servicer: object, messages: ModuleType, stubs: ModuleType, service: str
) -> Registration:
    add = getattr(stubs, f"add_{service}Servicer_to_server")
    full_name = str(messages.DESCRIPTOR.services_by_name[service].full_name)
    return Registration(name, full_name, lambda server: add(servicer, server))


@contextlib.asynccontextmanager
async def build(settings: Settings, services: tuple[str, ...]) -> AsyncIterator[App]:
    """Opens the stores and wires `services`; closes everything on exit."""
    unknown = [s for s in services if s not in SERVED]
    if unknown:
        planned = [s for s in unknown if s in PLANNED]
        if planned:
            raise SystemExit(
                f"service {planned[0]!r} has a contract but is not served by this release yet; "
                f"served: {', '.join(SERVED)}"
            )
        raise SystemExit(f"unknown service {unknown[0]!r}; choose from {', '.join(SERVED)}")
    epochs = await _open_shard_map(settings)
    bus, limiter, redis_client = await _open_bus(settings)
    try:
        instance_id = bus.instance_id if isinstance(bus, RedisBus) else "embedded"
        async with (
            open_stores(settings, redis_client) as stores,
            open_presence_backend(redis_client, instance_id=instance_id) as presence,
        ):
            tally = (
                RedisReceiptTally(
                    redis_client,
                    retention_seconds=settings.router.retention_seconds,
                    batch_max=settings.router.receipt_batch_max,
                )
                if redis_client is not None
                else InProcessReceiptTally()
            )
            app = _wire(
                settings, services, stores, bus, limiter, EpochFence(epochs), tally, presence
            )
            if isinstance(epochs, FileShardMapSource):
                reload_seconds = settings.sharding.reload_seconds
                app.background.append(lambda: epochs.run(reload_seconds))
            if redis_client is not None and isinstance(bus, RedisBus) and app.gateway:
                app.background.append(
                    _load_reporter(redis_client, bus.instance_id, app.gateway, settings)
                )
            yield app
    finally:
        if isinstance(bus, RedisBus):
            await bus.close()
        if redis_client is not None:
            await redis_client.aclose()


def _wire(
    settings: Settings,
    services: tuple[str, ...],
    stores: Stores,
    bus: Bus,
    limiter: RateLimiter,
    fence: EpochFence,
    tally: ReceiptTally,
    presence_backend: PresenceBackend,
) -> App:
    """Builds the domain services and servicers over opened stores."""
    clock = system_clock
    key = load_or_create_signing_key(settings.signing_key_path())
    devices_store = stores.devices
    accounts = stores.accounts
    messages = stores.messages
    authenticator = Authenticator(key, issuer=settings.auth.issuer, sessions=devices_store)
    sessions = SessionIssuer(
        store=accounts,
        tokens=TokenIssuer(
            key, issuer=settings.auth.issuer, ttl_seconds=settings.auth.access_token_ttl_seconds
        ),
        refresh_ttl_seconds=settings.auth.refresh_token_ttl_seconds,
        clock=clock,
    )
    deliverer = Deliverer(store=messages, bus=bus)
    group_directory = CachedGroupDirectory(
        stores.groups, capacity=settings.groups.membership_cache_groups
    )
    sending = SendService(
        store=messages,
        directory=devices_store,
        deliverer=deliverer,
        limiter=limiter,
        fence=fence,
        groups=GroupSender(
            store=messages,
            log=stores.group_log,
            groups=group_directory,
            directory=devices_store,
            bus=bus,
            config=settings.router,
            groups_config=settings.groups,
            clock=clock,
        ),
        config=settings.router,
        groups_config=settings.groups,
        clock=clock,
    )
    group_reading = GroupReading(
        log=stores.group_log,
        tally=tally,
        groups=group_directory,
        privacy=stores.privacy,
        config=settings.router,
        clock=clock,
    )
    inbox = InboxService(
        store=messages,
        directory=devices_store,
        deliverer=deliverer,
        groups=group_reading,
        config=settings.router,
        clock=clock,
    )
    notices = NoticeService(
        directory=devices_store, deliverer=deliverer, config=settings.router, clock=clock
    )
    prekey_limit = settings.keys.max_prekeys_per_upload
    presence = wire_presence(
        backend=presence_backend,
        last_seen=stores.last_seen,
        privacy=stores.privacy,
        groups=stores.groups,
        devices=devices_store,
        limiter=limiter,
        authenticator=authenticator,
        config=settings.presence,
        clock=clock,
    )
    gateway = GatewayServicer(
        sending=sending,
        inbox=inbox,
        devices=devices_store,
        bus=bus,
        authenticator=authenticator,
        fence=fence,
        config=settings.gateway,
        presence=presence.service,
    )
    # Servicers are cheap to build; only the requested ones are registered.
    servicers: dict[str, tuple[object, ModuleType, ModuleType, str]] = {
        "users": (
            UsersServicer(
                registration=RegistrationService(
                    store=accounts,
                    provider=LogVerificationProvider(),
                    sessions=sessions,
                    limiter=limiter,
                    bus=bus,
                    config=settings.users,
                    prekey_limit=prekey_limit,
                    clock=clock,
                ),
                sessions=sessions,
                privacy=PrivacyService(store=stores.privacy, config=settings.users, clock=clock),
                authenticator=authenticator,
            ),
            users_service_pb2,
            users_service_pb2_grpc,
            "UsersService",
        ),
        "devices": (
            DevicesServicer(
                devices=DeviceService(
                    store=devices_store,
                    sessions=sessions,
                    notices=notices,
                    bus=bus,
                    limiter=limiter,
                    config=settings.devices,
                    prekey_limit=prekey_limit,
                    clock=clock,
                ),
                markers=ReadMarkerService(
                    store=stores.read_markers, notices=notices, config=settings.devices, clock=clock
                ),
                deletions=DeletionService(
                    tombstones=stores.tombstones,
                    origins=stores.origins,
                    groups=stores.groups,
                    notices=notices,
                    config=settings.devices,
                    retention_seconds=settings.router.retention_seconds,
                    clock=clock,
                ),
                authenticator=authenticator,
            ),
            devices_service_pb2,
            devices_service_pb2_grpc,
            "DevicesService",
        ),
        "keys": (
            KeysServicer(
                keys=KeyDirectory(
                    store=stores.keys,
                    directory=devices_store,
                    limiter=limiter,
                    config=settings.keys,
                ),
                authenticator=authenticator,
            ),
            keys_service_pb2,
            keys_service_pb2_grpc,
            "KeysService",
        ),
        "router": (
            RouterServicer(
                sending=sending, inbox=inbox, groups=group_reading, authenticator=authenticator
            ),
            router_service_pb2,
            router_service_pb2_grpc,
            "RouterService",
        ),
        "gateway": (gateway, gateway_service_pb2, gateway_service_pb2_grpc, "GatewayService"),
        "presence": (
            presence.servicer,
            presence_service_pb2,
            presence_service_pb2_grpc,
            "PresenceService",
        ),
        "groups": (
            groups_servicer(
                store=stores.groups,
                devices=devices_store,
                privacy=stores.privacy,
                limiter=limiter,
                receipts=group_reading,
                authenticator=authenticator,
                config=settings.groups,
                clock=clock,
            ),
            groups_service_pb2,
            groups_service_pb2_grpc,
            "GroupsService",
        ),
    }
    app = App(
        registrations=[_registration(name, *servicers[name]) for name in services],
        gateway=gateway if "gateway" in services else None,
    )
    if "gateway" in services:
        app.background.append(gateway.close_idle_connections)
    if "presence" in services or "gateway" in services:
        app.background.extend(presence.background)
    sweeper = stores.sweeper
    if sweeper is not None and ("router" in services or "gateway" in services):
        app.background.append(lambda: _sweep_forever(sweeper, settings.router.expiry_sweep_seconds))
    return app


async def _open_bus(
    settings: Settings,
) -> tuple[Bus, RateLimiter, aioredis.Redis | None]:
    """The in-process bus, or the Redis one (started) when server.bus=redis."""
    if settings.server.bus == "inprocess":
        return InProcessBus(), InProcessRateLimiter(), None
    # A blocking pool: a burst (a large group's fan-out) queues for a connection rather
    # than failing once the pool is exhausted.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.server.redis_url,
        max_connections=settings.server.redis_max_connections,
        timeout=settings.server.store_timeout_seconds,
        socket_timeout=settings.server.store_timeout_seconds,
    )
    client = aioredis.Redis.from_pool(pool)  # closing the client closes the pool
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        raise SystemExit(
            f"cannot reach Redis at {settings.server.redis_url} (server.redis_url): {exc}"
        ) from None
    instance_id = settings.server.instance_id or uuid.uuid4().hex[:12]
    bus = RedisBus(
        client,
        instance_id=instance_id,
        heartbeat_seconds=settings.server.route_heartbeat_seconds,
        route_ttl_seconds=settings.server.route_ttl_seconds,
    )
    await bus.start()
    log.info("bus on redis", instance_id=instance_id)
    return bus, RedisRateLimiter(client), client


async def _open_shard_map(settings: Settings) -> EpochSource:
    """The shard map file named by sharding.map_file, loaded; or none (nothing fenced)."""
    path = settings.sharding.map_file
    if path is None:
        return NoShardMap()
    source = FileShardMapSource(path)
    try:
        shard_map = await source.load()
    except ShardMapMissing as error:
        raise SystemExit(str(error)) from None
    log.info(
        "shard map in force",
        path=str(path),
        epoch=shard_map.epoch,
        region=settings.sharding.region or "(unnamed)",
    )
    return source


def _load_reporter(
    client: aioredis.Redis, instance_id: str, gateway: GatewayServicer, settings: Settings
) -> Callable[[], Any]:
    """A background task reporting open connections for the operator's autoscaler
    (chatconnect.runtime.load_reports), once per route heartbeat."""

    async def report_forever() -> None:
        task = asyncio.current_task()
        try:
            while True:
                with contextlib.suppress(RedisError, OSError):
                    # Best effort: a missed report only makes the operator hold, not scale.
                    await report_load(
                        client,
                        component=GATEWAY,
                        instance_id=instance_id,
                        figure=gateway.open_connections,
                        now_ms=int(system_clock() * 1000),
                    )
                if task is not None and task.cancelling():
                    # A shutdown's cancellation that landed inside the Redis command can come
                    # out as a connection error, suppressed above; it must still end the loop
                    # (a test server once waited out its 10 s stop timeout here).
                    raise asyncio.CancelledError
                await asyncio.sleep(settings.server.route_heartbeat_seconds)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await asyncio.shield(
                    withdraw_load(client, component=GATEWAY, instance_id=instance_id)
                )

    return report_forever


async def _sweep_forever(store: ExpirySweeper, interval: float) -> None:
    """Turns expired envelopes into gaps in the background."""
    while True:
        await asyncio.sleep(interval)
        try:
            expired = await store.sweep(system_clock(), limit=10_000)
            if expired:
                log.info("expired envelopes turned into gaps", count=expired)
        except Exception:
            log.exception("expiry sweep failed")
