"""The contract of the AccountStore port, written once and run against every adapter.

Adapters are built by the factories in `ADAPTERS`. Everything is asserted through the port;
the ScyllaDB-only tests at the end look into tables directly only for what the port cannot
show (rows of removed devices, TTLs) and for recovery after a failed write.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from chatconnect.keys.domain.models import DeviceKeys, PreKey, SignedPreKey
from chatconnect.model import DeviceAddress, DeviceKind
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.storage.cql import CqlSession, Statement
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from chatconnect.users.domain.models import NewDevice, Registration, Verification
from chatconnect.users.embedded import SqliteAccountStore
from chatconnect.users.ports import AccountStore
from chatconnect.users.scylla import VERIFICATION_KEPT_SECONDS, ScyllaAccountStore
from tests.scylla import empty_keyspace

CODE_TTL = 600.0
MAX_ATTEMPTS = 3


@asynccontextmanager
async def _embedded(request: pytest.FixtureRequest) -> AsyncIterator[AccountStore]:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    db = await Database.open(tmp_path / "db.sqlite", migrations=MIGRATIONS, synchronous="NORMAL")
    try:
        yield SqliteAccountStore(db)
    finally:
        await db.close()


@asynccontextmanager
async def _scylla(request: pytest.FixtureRequest) -> AsyncIterator[AccountStore]:
    async with empty_keyspace(request.getfixturevalue("scylla_keyspace")) as cql:
        yield ScyllaAccountStore(cql)


StoreFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[AccountStore]]

ADAPTERS: dict[str, StoreFactory] = {"embedded": _embedded, "scylla": _scylla}


@pytest.fixture(params=sorted(ADAPTERS))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[AccountStore]:
    """A fresh, empty store of the adapter named by the param."""
    async with ADAPTERS[request.param](request) as opened:
        yield opened


# --- builders ------------------------------------------------------------------------------


def now() -> float:
    """Real time: the ScyllaDB adapter sets TTLs from it."""
    return time.time()


def phone() -> str:
    return f"+1555{uuid.uuid4().int % 10_000_000:07d}"


def verification(
    number: str, *, request_id: str = "", expires_at: float | None = None
) -> Verification:
    verification_id = uuid.uuid4().hex
    return Verification(
        verification_id=verification_id,
        phone_number=number,
        request_id=request_id or uuid.uuid4().hex,
        code_hash=os.urandom(32),
        expires_at=now() + CODE_TTL if expires_at is None else expires_at,
    )


def new_device(prekeys: int = 3) -> NewDevice:
    return NewDevice(
        incarnation=uuid.uuid4().hex,
        registration_id=int.from_bytes(os.urandom(2), "big") + 1,
        kind=DeviceKind.PHONE,
        keys=DeviceKeys(
            identity_key=os.urandom(32),
            signed_prekey=SignedPreKey(7, os.urandom(32), os.urandom(64)),
            one_time_prekeys=tuple(PreKey(100 + i, os.urandom(32)) for i in range(prekeys)),
        ),
    )


async def started(store: AccountStore, number: str | None = None) -> Verification:
    """A stored verification of `number` (a fresh one unless given)."""
    return await store.create_verification(verification(number or phone()))


async def register(
    store: AccountStore,
    v: Verification,
    *,
    request_id: str | None = None,
    primary: NewDevice | None = None,
    new_user_id: str | None = None,
) -> Registration:
    return await store.register(
        verification=v,
        request_id=request_id or uuid.uuid4().hex,
        new_user_id=new_user_id or uuid.uuid4().hex,
        primary=primary or new_device(),
        now=now(),
    )


async def is_current(store: AccountStore, device: DeviceAddress, incarnation: str) -> bool:
    """Whether `device` has `incarnation` now, seen through the port: a refresh token is
    accepted only for a current device incarnation."""
    token = os.urandom(32)
    await store.save_refresh_token(token, device, incarnation, now() + 60)
    return await store.take_refresh_token(token, now()) == (device, incarnation)


def primary_of(registration: Registration) -> DeviceAddress:
    return DeviceAddress(registration.user_id, 1)


# --- verifications -------------------------------------------------------------------------


async def test_create_verification_stores_and_returns_it(store: AccountStore) -> None:
    v = verification(phone())
    assert await store.create_verification(v) == v
    assert await store.get_verification(v.verification_id) == v


async def test_create_verification_is_idempotent_per_phone_and_request(
    store: AccountStore,
) -> None:
    first = verification(phone())
    assert await store.create_verification(first) == first
    retry = verification(first.phone_number, request_id=first.request_id)
    assert await store.create_verification(retry) == first
    assert await store.get_verification(retry.verification_id) is None


async def test_create_verification_is_distinct_for_another_request_or_number(
    store: AccountStore,
) -> None:
    first = await started(store)
    other_request = verification(first.phone_number)
    other_number = verification(phone(), request_id=first.request_id)
    assert await store.create_verification(other_request) == other_request
    assert await store.create_verification(other_number) == other_number
    for v in (first, other_request, other_number):
        assert await store.get_verification(v.verification_id) == v


async def test_concurrent_creates_of_one_request_return_one_verification(
    store: AccountStore,
) -> None:
    number, request_id = phone(), uuid.uuid4().hex
    candidates = [verification(number, request_id=request_id) for _ in range(5)]
    stored = await asyncio.gather(*(store.create_verification(v) for v in candidates))
    assert len({s.verification_id for s in stored}) == 1
    assert stored[0] in candidates
    assert await store.get_verification(stored[0].verification_id) == stored[0]


async def test_get_unknown_verification_is_none(store: AccountStore) -> None:
    assert await store.get_verification(uuid.uuid4().hex) is None


async def test_reserve_attempt_counts_and_stops_at_the_limit(store: AccountStore) -> None:
    v = await started(store)
    for used in range(1, MAX_ATTEMPTS + 1):
        assert await store.reserve_attempt(v.verification_id, max_attempts=MAX_ATTEMPTS)
        stored = await store.get_verification(v.verification_id)
        assert stored is not None and stored.attempts == used
    assert not await store.reserve_attempt(v.verification_id, max_attempts=MAX_ATTEMPTS)
    stored = await store.get_verification(v.verification_id)
    assert stored is not None and stored.attempts == MAX_ATTEMPTS
    # A higher limit on a later call counts on from there.
    assert await store.reserve_attempt(v.verification_id, max_attempts=MAX_ATTEMPTS + 1)


async def test_reserve_attempt_of_unknown_verification_is_refused(store: AccountStore) -> None:
    assert not await store.reserve_attempt(uuid.uuid4().hex, max_attempts=MAX_ATTEMPTS)
    assert await store.get_verification(uuid.uuid4().hex) is None


async def test_concurrent_attempts_never_pass_the_limit(store: AccountStore) -> None:
    v = await started(store)
    results = await asyncio.gather(
        *(store.reserve_attempt(v.verification_id, max_attempts=MAX_ATTEMPTS) for _ in range(10))
    )
    assert results.count(True) == MAX_ATTEMPTS
    stored = await store.get_verification(v.verification_id)
    assert stored is not None and stored.attempts == MAX_ATTEMPTS


async def test_attempts_are_counted_per_verification(store: AccountStore) -> None:
    first, second = await started(store), await started(store)
    for _ in range(MAX_ATTEMPTS):
        assert await store.reserve_attempt(first.verification_id, max_attempts=MAX_ATTEMPTS)
    assert await store.reserve_attempt(second.verification_id, max_attempts=MAX_ATTEMPTS)


# --- registration --------------------------------------------------------------------------


async def test_register_creates_the_account_with_device_1(store: AccountStore) -> None:
    v = await started(store)
    primary, request_id, user_id = new_device(), uuid.uuid4().hex, uuid.uuid4().hex
    registration = await register(
        store, v, request_id=request_id, primary=primary, new_user_id=user_id
    )
    assert registration == Registration(user_id, primary.incarnation, took_over=False)
    stored = await store.get_verification(v.verification_id)
    assert stored is not None
    assert (
        stored.completed_request_id,
        stored.completed_user_id,
        stored.completed_incarnation,
        stored.completed_took_over,
    ) == (request_id, user_id, primary.incarnation, False)
    assert (stored.code_hash, stored.phone_number) == (v.code_hash, v.phone_number)
    assert await is_current(store, DeviceAddress(user_id, 1), primary.incarnation)


async def test_register_retry_with_same_request_returns_same_registration(
    store: AccountStore,
) -> None:
    v = await started(store)
    request_id = uuid.uuid4().hex
    first = await register(store, v, request_id=request_id)
    again = await register(store, v, request_id=request_id)
    assert (again.user_id, again.incarnation, again.took_over) == (
        first.user_id,
        first.incarnation,
        first.took_over,
    )
    assert await is_current(store, primary_of(first), first.incarnation)


async def test_concurrent_retries_of_one_registration_agree(store: AccountStore) -> None:
    v = await started(store)
    request_id = uuid.uuid4().hex
    results = await asyncio.gather(*(register(store, v, request_id=request_id) for _ in range(3)))
    assert len({(r.user_id, r.incarnation, r.took_over) for r in results}) == 1
    assert not results[0].took_over
    assert await is_current(store, primary_of(results[0]), results[0].incarnation)
    stored = await store.get_verification(v.verification_id)
    assert stored is not None
    assert (stored.completed_user_id, stored.completed_incarnation) == (
        results[0].user_id,
        results[0].incarnation,
    )


async def test_second_registration_of_a_number_takes_the_account_over(
    store: AccountStore,
) -> None:
    number = phone()
    old = await register(store, await started(store, number))
    v = await started(store, number)
    primary, request_id = new_device(), uuid.uuid4().hex
    new = await register(store, v, request_id=request_id, primary=primary)
    assert new == Registration(
        old.user_id, primary.incarnation, took_over=True, removed_devices=(primary_of(old),)
    )
    assert not await is_current(store, primary_of(old), old.incarnation)
    assert await is_current(store, primary_of(new), new.incarnation)
    stored = await store.get_verification(v.verification_id)
    assert stored is not None
    assert (stored.completed_request_id, stored.completed_user_id) == (request_id, old.user_id)
    assert stored.completed_took_over
    # Retrying the take-over returns it again (without repeating it).
    again = await register(store, v, request_id=request_id)
    assert (again.user_id, again.incarnation, again.took_over) == (
        old.user_id,
        new.incarnation,
        True,
    )
    assert await is_current(store, primary_of(new), new.incarnation)


async def test_takeover_makes_old_refresh_tokens_useless(store: AccountStore) -> None:
    number = phone()
    old = await register(store, await started(store, number))
    token = os.urandom(32)
    await store.save_refresh_token(token, primary_of(old), old.incarnation, now() + 60)
    await register(store, await started(store, number))
    assert await store.take_refresh_token(token, now()) is None


async def test_concurrent_registrations_of_a_new_number_make_one_account(
    store: AccountStore,
) -> None:
    number = phone()
    first, second = await started(store, number), await started(store, number)
    results = await asyncio.gather(register(store, first), register(store, second))
    assert results[0].user_id == results[1].user_id
    assert sorted(r.took_over for r in results) == [False, True]
    winner = next(r for r in results if r.took_over)
    loser = next(r for r in results if not r.took_over)
    assert winner.removed_devices == (primary_of(loser),)
    assert await is_current(store, primary_of(winner), winner.incarnation)
    assert not await is_current(store, primary_of(loser), loser.incarnation)


async def test_register_takes_a_full_upload_of_one_time_prekeys(store: AccountStore) -> None:
    registration = await register(store, await started(store), primary=new_device(prekeys=100))
    assert await is_current(store, primary_of(registration), registration.incarnation)


async def test_registrations_of_different_numbers_make_different_accounts(
    store: AccountStore,
) -> None:
    verifications = [await started(store) for _ in range(3)]
    results = await asyncio.gather(*(register(store, v) for v in verifications))
    assert len({r.user_id for r in results}) == 3
    assert not any(r.took_over for r in results)


# --- refresh tokens ------------------------------------------------------------------------


async def test_refresh_token_is_taken_once(store: AccountStore) -> None:
    registration = await register(store, await started(store))
    device, token = primary_of(registration), os.urandom(32)
    await store.save_refresh_token(token, device, registration.incarnation, now() + 60)
    assert await store.take_refresh_token(token, now()) == (device, registration.incarnation)
    assert await store.take_refresh_token(token, now()) is None


async def test_concurrent_takes_of_a_refresh_token_hand_it_out_once(
    store: AccountStore,
) -> None:
    registration = await register(store, await started(store))
    device, token = primary_of(registration), os.urandom(32)
    await store.save_refresh_token(token, device, registration.incarnation, now() + 60)
    taken = await asyncio.gather(*(store.take_refresh_token(token, now()) for _ in range(5)))
    assert [t for t in taken if t is not None] == [(device, registration.incarnation)]


async def test_expired_or_unknown_refresh_token_is_none(store: AccountStore) -> None:
    registration = await register(store, await started(store))
    device, token = primary_of(registration), os.urandom(32)
    await store.save_refresh_token(token, device, registration.incarnation, now() + 60)
    assert await store.take_refresh_token(token, now() + 61) is None
    assert await store.take_refresh_token(os.urandom(32), now()) is None
    expired = os.urandom(32)
    await store.save_refresh_token(expired, device, registration.incarnation, now() - 1)
    assert await store.take_refresh_token(expired, now()) is None


async def test_refresh_token_of_a_stale_incarnation_is_none(store: AccountStore) -> None:
    registration = await register(store, await started(store))
    token = os.urandom(32)
    await store.save_refresh_token(token, primary_of(registration), "not-current", now() + 60)
    assert await store.take_refresh_token(token, now()) is None


# --- ScyllaDB only: what the port cannot show ----------------------------------------------


async def _rows(cql: CqlSession, query: str, *params: Any) -> list[dict[str, Any]]:
    return await cql.execute_all("test", query, params)


async def _seed_linked_device(cql: CqlSession, device: DeviceAddress) -> None:
    """A linked device with keys, an inbox and an inbox head, as the other adapters write
    them."""
    key = (device.user_id, device.device_id)
    await cql.batch(
        "seed",
        [
            Statement(
                "INSERT INTO devices (user_id, device_id, incarnation) VALUES (?, ?, ?)",
                (*key, "linked"),
            ),
            Statement(
                "INSERT INTO signed_prekeys (user_id, device_id, key_id) VALUES (?, ?, 1)", key
            ),
            Statement(
                "INSERT INTO one_time_prekeys (user_id, device_id, key_id) VALUES (?, ?, 1)", key
            ),
            Statement(
                "INSERT INTO inbox (user_id, device_id, sequence, server_message_id) "
                "VALUES (?, ?, 1, 'm1')",
                key,
            ),
            Statement(
                "INSERT INTO inbox_by_message (user_id, device_id, server_message_id, sequence) "
                "VALUES (?, ?, 'm1', 1)",
                key,
            ),
            Statement(
                "INSERT INTO inbox_gaps (user_id, device_id, first_sequence, last_sequence) "
                "VALUES (?, ?, 2, 3)",
                key,
            ),
            Statement(
                "INSERT INTO inbox_heads (user_id, device_id, reserved) VALUES (?, ?, 1000)", key
            ),
        ],
    )


async def test_scylla_takeover_removes_old_devices_rows_but_keeps_inbox_heads(
    cql: CqlSession,
) -> None:
    store, number = ScyllaAccountStore(cql), phone()
    old = await register(store, await started(store, number))
    user = old.user_id
    await _seed_linked_device(cql, DeviceAddress(user, 2))
    primary = new_device(prekeys=2)
    new = await register(store, await started(store, number), primary=primary)
    assert new.removed_devices == (DeviceAddress(user, 1), DeviceAddress(user, 2))

    devices = await _rows(cql, "SELECT device_id, incarnation FROM devices WHERE user_id = ?", user)
    assert devices == [{"device_id": 1, "incarnation": primary.incarnation}]
    spks = await _rows(cql, "SELECT device_id, key_id FROM signed_prekeys WHERE user_id = ?", user)
    assert spks == [{"device_id": 1, "key_id": primary.keys.signed_prekey.key_id}]
    otks = await _rows(
        cql, "SELECT key_id FROM one_time_prekeys WHERE user_id = ? AND device_id = 1", user
    )
    assert [r["key_id"] for r in otks] == [k.key_id for k in primary.keys.one_time_prekeys]
    for table in ("one_time_prekeys", "inbox", "inbox_by_message", "inbox_gaps"):
        query = f"SELECT * FROM {table} WHERE user_id = ? AND device_id = 2"
        assert await _rows(cql, query, user) == [], table
    heads = await _rows(
        cql, "SELECT reserved FROM inbox_heads WHERE user_id = ? AND device_id = 2", user
    )
    assert heads == [{"reserved": 1000}]
    accounts = await _rows(
        cql,
        "SELECT phone_number, identity_key, next_device_id FROM accounts WHERE user_id = ?",
        user,
    )
    assert accounts == [
        {"phone_number": number, "identity_key": primary.keys.identity_key, "next_device_id": 2}
    ]


@pytest.mark.parametrize("applied", ["nothing", "removals", "all_but_completion"])
async def test_scylla_register_retried_after_a_failed_batch_converges(
    cql: CqlSession, monkeypatch: pytest.MonkeyPatch, applied: str
) -> None:
    store, number = ScyllaAccountStore(cql), phone()
    old = await register(store, await started(store, number))
    v, request_id = await started(store, number), uuid.uuid4().hex
    first_try = new_device(prekeys=3)
    real_batch = cql.batch

    async def lost(operation: str, statements: list[Statement], **kwargs: Any) -> None:
        # Part of the batch reaches the replicas, then the coordinator dies.
        removals = sum(1 for s in statements if s.cql.startswith("DELETE"))
        part = {"nothing": 0, "removals": removals, "all_but_completion": len(statements) - 1}
        await real_batch(operation, statements[: part[applied]], **kwargs)
        raise StoreUnavailable("coordinator lost")

    monkeypatch.setattr(cql, "batch", lost)
    with pytest.raises(StoreUnavailable):
        await register(store, v, request_id=request_id, primary=first_try)
    monkeypatch.undo()
    stored = await store.get_verification(v.verification_id)
    assert stored is not None and stored.completed_request_id is None

    retry = new_device(prekeys=2)
    registration = await register(store, v, request_id=request_id, primary=retry)
    # The outcome was fixed by the first try's claim: its incarnation, a take-over.
    assert registration == Registration(
        old.user_id, first_try.incarnation, took_over=True, removed_devices=(primary_of(old),)
    )
    assert await is_current(store, primary_of(registration), first_try.incarnation)
    otks = await _rows(
        cql,
        "SELECT key_id, public_key FROM one_time_prekeys WHERE user_id = ? AND device_id = 1",
        old.user_id,
    )
    assert [(r["key_id"], r["public_key"]) for r in otks] == [
        (k.key_id, k.public_key) for k in retry.keys.one_time_prekeys
    ]


async def test_scylla_sets_ttls_from_expiry(cql: CqlSession) -> None:
    store = ScyllaAccountStore(cql)
    v = await started(store)
    token = os.urandom(32)
    await store.save_refresh_token(token, DeviceAddress("u", 1), "i", now() + 120)
    [row] = await _rows(
        cql,
        "SELECT TTL(code_hash) AS t FROM verifications WHERE verification_id = ?",
        v.verification_id,
    )
    assert (
        CODE_TTL + VERIFICATION_KEPT_SECONDS - 5 <= row["t"] <= CODE_TTL + VERIFICATION_KEPT_SECONDS
    )
    [row] = await _rows(
        cql, "SELECT TTL(incarnation) AS t FROM device_sessions WHERE token_hash = ?", token
    )
    assert 115 <= row["t"] <= 120
