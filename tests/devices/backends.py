"""Backends for the DeviceStore and KeyStore contracts: per adapter, a device store and a
key store on one database, and a way to seed an account with its primary device.

Accounts belong to the users service, so seeding goes around the ports under test (the
embedded account store for SQLite; plain CQL inserts for ScyllaDB). Loaded as a pytest
plugin (tests/conftest.py), so the `adapter` and `backend` fixtures serve both suites.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatconnect.devices.domain.models import LinkRequest
from chatconnect.devices.embedded import SqliteDeviceStore
from chatconnect.devices.ports import DeviceStore
from chatconnect.devices.scylla import ScyllaDeviceStore
from chatconnect.keys.domain.models import DeviceKeys, PreKey, SignedPreKey
from chatconnect.keys.embedded import SqliteKeyStore
from chatconnect.keys.ports import KeyStore
from chatconnect.keys.scylla import ScyllaKeyStore
from chatconnect.model import DeviceAddress, DeviceKind
from chatconnect.storage.cql import CqlSession, Statement
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from chatconnect.users.domain.models import NewDevice, Verification
from chatconnect.users.embedded import SqliteAccountStore

NOW = 1_700_000_000.0
LINK_TTL = 300.0
MAX_DEVICES = 8

ALICE = "alice"
BOB = "bob"
ALICE_PRIMARY = DeviceAddress(ALICE, 1)


# --- backends -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """The stores of one adapter on one database, and a way to seed accounts."""

    devices: DeviceStore
    keys: KeyStore
    seed_account: Callable[[str], Awaitable[None]]


def identity_key(user_id: str) -> bytes:
    return f"identity-{user_id}".encode().ljust(32, b".")


def primary_device(user_id: str) -> NewDevice:
    """The primary device every seeded account has (device 1, no one-time prekeys)."""
    signed = SignedPreKey(1, f"spk-{user_id}-1".encode(), b"signature")
    return NewDevice(
        incarnation=f"{user_id}-primary",
        registration_id=1001,
        kind=DeviceKind.PHONE,
        keys=DeviceKeys(identity_key(user_id), signed),
        encrypted_name=b"phone",
    )


_phone_numbers = itertools.count(100)


@asynccontextmanager
async def _embedded(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with _embedded_store(tmp_path, cached_users=0) as backend:
        yield backend


@asynccontextmanager
async def _embedded_cached(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    """The embedded store as one server process opens it: device lists kept in memory."""
    async with _embedded_store(tmp_path, cached_users=1000) as backend:
        yield backend


@asynccontextmanager
async def _embedded_store(tmp_path: Path, *, cached_users: int) -> AsyncIterator[Backend]:
    db = await Database.open(tmp_path / "db.sqlite", migrations=MIGRATIONS, synchronous="NORMAL")
    accounts = SqliteAccountStore(db)

    async def seed(user_id: str) -> None:
        verification = Verification(
            verification_id=uuid.uuid4().hex,
            phone_number=f"+1555010{next(_phone_numbers):04d}",
            request_id=uuid.uuid4().hex,
            code_hash=b"",
            expires_at=NOW + 600,
        )
        await accounts.register(
            verification=verification,
            request_id=uuid.uuid4().hex,
            new_user_id=user_id,
            primary=primary_device(user_id),
            now=NOW,
        )

    try:
        devices = await SqliteDeviceStore.open(db, cached_users=cached_users)
        yield Backend(devices, SqliteKeyStore(db), seed)
    finally:
        await db.close()


async def seed_scylla_account(cql: CqlSession, user_id: str) -> None:
    """Seeding, not the port under test: the account, primary device and signed prekey
    rows that the users service's ScyllaDB registration writes."""
    device = primary_device(user_id)
    spk = device.keys.signed_prekey
    await cql.batch(
        "seed_account",
        [
            Statement(
                "INSERT INTO accounts (user_id, phone_number, identity_key, next_device_id, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                (user_id, f"+1555010{next(_phone_numbers):04d}", identity_key(user_id), 2, NOW),
            ),
            Statement(
                "INSERT INTO devices (user_id, device_id, incarnation, registration_id, kind, "
                "encrypted_name, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user_id,
                    1,
                    device.incarnation,
                    device.registration_id,
                    int(device.kind),
                    device.encrypted_name,
                    NOW,
                    NOW,
                ),
            ),
            Statement(
                "INSERT INTO signed_prekeys (user_id, device_id, key_id, public_key, signature) "
                "VALUES (?, ?, ?, ?, ?)",
                (user_id, 1, spk.key_id, spk.public_key, spk.signature),
            ),
        ],
    )


@asynccontextmanager
async def _scylla(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    cql: CqlSession = request.getfixturevalue("cql")

    async def seed(user_id: str) -> None:
        await seed_scylla_account(cql, user_id)

    yield Backend(ScyllaDeviceStore(cql), ScyllaKeyStore(cql), seed)


BackendFactory = Callable[[pytest.FixtureRequest, Path], AbstractAsyncContextManager[Backend]]

ADAPTERS: dict[str, BackendFactory] = {
    "embedded": _embedded,
    "embedded-cached": _embedded_cached,
    "scylla": _scylla,
}


def prepare_adapter(request: pytest.FixtureRequest) -> str:
    """The adapter named by the param; the Cassandra session of "scylla" is set up here,
    outside the event loop (an async fixture cannot set up another one)."""
    name: str = request.param
    if name == "scylla":
        request.getfixturevalue("cql")
    return name


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> str:
    return prepare_adapter(request)


@pytest.fixture
async def backend(
    adapter: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    """Fresh, empty stores of the adapter, with alice's account seeded."""
    async with ADAPTERS[adapter](request, tmp_path) as opened:
        await opened.seed_account(ALICE)
        yield opened


# --- builders -------------------------------------------------------------------------------


def link_request(
    *, request_id: str = "", ephemeral_key: bytes = b"", now: float = NOW
) -> LinkRequest:
    """A new pending link, with a fresh code and secret."""
    return LinkRequest(
        link_code=uuid.uuid4().hex[:16].upper(),
        secret_hash=uuid.uuid4().bytes * 2,
        request_id=request_id or uuid.uuid4().hex,
        ephemeral_key=ephemeral_key or uuid.uuid4().bytes * 2,
        kind=DeviceKind.DESKTOP,
        expires_at=now + LINK_TTL,
    )


def new_device(
    *, incarnation: str = "", one_time: tuple[int, ...] = (), name: bytes = b"laptop"
) -> NewDevice:
    """A device about to be linked, with one-time prekeys of the given ids."""
    incarnation = incarnation or uuid.uuid4().hex
    return NewDevice(
        incarnation=incarnation,
        registration_id=4242,
        kind=DeviceKind.DESKTOP,
        keys=DeviceKeys(
            b"ignored by the store",
            SignedPreKey(7, f"spk-{incarnation}".encode(), b"sig"),
            tuple(PreKey(i, f"otk-{incarnation}-{i}".encode()) for i in one_time),
        ),
        encrypted_name=name,
    )


async def approve(
    store: DeviceStore,
    link_code: str,
    *,
    user_id: str = ALICE,
    request_id: str = "",
    max_devices: int = MAX_DEVICES,
    now: float = NOW,
) -> LinkRequest:
    return await store.approve_link(
        link_code,
        user_id=user_id,
        request_id=request_id or uuid.uuid4().hex,
        provisioning=b"provisioning",
        max_devices=max_devices,
        now=now,
    )


async def link_device(
    store: DeviceStore,
    user_id: str = ALICE,
    *,
    device: NewDevice | None = None,
    max_devices: int = MAX_DEVICES,
    now: float = NOW,
) -> DeviceAddress:
    """Links a new device through create, approve and complete."""
    link = await store.create_link(link_request(now=now))
    await approve(store, link.link_code, user_id=user_id, max_devices=max_devices, now=now)
    return await store.complete_link(
        link.link_code, request_id=uuid.uuid4().hex, device=device or new_device(), now=now
    )


async def device_ids(store: DeviceStore, user_id: str = ALICE) -> list[int]:
    return [d.device_id for d in await store.list_devices(user_id)]


# --- the directory --------------------------------------------------------------------------
