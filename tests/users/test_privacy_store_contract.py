"""The contract of the PrivacyStore port (and so of PrivacyDirectory, which presence and
groups read), written once and run against every adapter.

Accounts belong to AccountStore, so they are seeded around the port under test: through
the embedded account store for SQLite, with the plain CQL rows of registration for
ScyllaDB (tests/devices/backends.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatconnect.storage.cql import CqlSession
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from chatconnect.users.domain.errors import TooManyContacts
from chatconnect.users.domain.models import (
    PrivacyChanges,
    PrivacySettings,
    Verification,
    Visibility,
)
from chatconnect.users.embedded import SqliteAccountStore
from chatconnect.users.ports import PrivacyStore
from chatconnect.users.privacy_embedded import SqlitePrivacyStore
from chatconnect.users.privacy_scylla import IN_CHUNK, ScyllaPrivacyStore
from tests.devices.backends import NOW, primary_device, seed_scylla_account

ALICE = "alice"
BOB = "bob"
REMEMBER = 3600.0
MAX = 5000


@dataclass(frozen=True)
class Backend:
    """A fresh store of one adapter and a way to create accounts beside it."""

    store: PrivacyStore
    seed: Callable[[str], Awaitable[None]]

    async def seed_all(self, *user_ids: str) -> None:
        for user_id in user_ids:
            await self.seed(user_id)


@pytest.fixture(params=["embedded", "scylla"])
def privacy_adapter(request: pytest.FixtureRequest) -> str:
    # The async `cql` fixture is set up here, outside the test's event loop.
    if request.param == "scylla":
        request.getfixturevalue("cql")
    name: str = request.param
    return name


@pytest.fixture
async def backend(
    privacy_adapter: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    if privacy_adapter == "scylla":
        cql: CqlSession = request.getfixturevalue("cql")

        async def seed_scylla(user_id: str) -> None:
            await seed_scylla_account(cql, user_id)

        yield Backend(ScyllaPrivacyStore(cql), seed_scylla)
        return
    db = await Database.open(tmp_path / "db.sqlite", migrations=MIGRATIONS, synchronous="NORMAL")
    accounts = SqliteAccountStore(db)

    async def seed_embedded(user_id: str) -> None:
        await accounts.register(
            verification=Verification(
                verification_id=uuid.uuid4().hex,
                phone_number=f"+1555{uuid.uuid4().int % 10**7:07d}",
                request_id=uuid.uuid4().hex,
                code_hash=b"",
                expires_at=NOW + 600,
            ),
            request_id=uuid.uuid4().hex,
            new_user_id=user_id,
            primary=primary_device(user_id),
            now=NOW,
        )

    try:
        yield Backend(SqlitePrivacyStore(db), seed_embedded)
    finally:
        await db.close()


async def change(
    store: PrivacyStore,
    owner: str = ALICE,
    *,
    add: list[str] | None = None,
    remove: list[str] | None = None,
    request_id: str = "",
    max_contacts: int = MAX,
    now: float = NOW,
    remember: float = REMEMBER,
) -> int:
    return await store.update_contacts(
        owner,
        request_id=request_id or uuid.uuid4().hex,
        add=add or [],
        remove=remove or [],
        max_contacts=max_contacts,
        now=now,
        remember_seconds=remember,
    )


async def everything(store: PrivacyStore, owner: str = ALICE) -> list[str]:
    return await store.list_contacts(owner, after="", limit=10_000)


# --- privacy settings ------------------------------------------------------------------------


async def test_existing_users_get_defaults_and_unknown_users_are_left_out(
    backend: Backend,
) -> None:
    await backend.seed_all(ALICE, BOB)
    found = await backend.store.privacy_settings([ALICE, "nobody", BOB, ALICE])
    assert found == {ALICE: PrivacySettings(), BOB: PrivacySettings()}
    assert await backend.store.privacy_settings([]) == {}
    assert await backend.store.privacy_settings(["nobody"]) == {}


async def test_a_change_keeps_the_values_it_does_not_name(backend: Backend) -> None:
    await backend.seed_all(ALICE, BOB)
    store = backend.store
    first = await store.update_privacy_settings(ALICE, PrivacyChanges(last_seen=Visibility.NOBODY))
    assert first == PrivacySettings(last_seen=Visibility.NOBODY)
    second = await store.update_privacy_settings(
        ALICE, PrivacyChanges(online=Visibility.CONTACTS, read_receipts=False)
    )
    expected = PrivacySettings(
        last_seen=Visibility.NOBODY, online=Visibility.CONTACTS, read_receipts=False
    )
    assert second == expected
    assert await store.update_privacy_settings(ALICE, PrivacyChanges()) == expected
    assert await store.privacy_settings([ALICE, BOB]) == {ALICE: expected, BOB: PrivacySettings()}


async def test_every_setting_round_trips(backend: Backend) -> None:
    await backend.seed(ALICE)
    everything_changed = PrivacyChanges(
        last_seen=Visibility.CONTACTS,
        online=Visibility.NOBODY,
        profile_photo=Visibility.NOBODY,
        about=Visibility.CONTACTS,
        status=Visibility.EVERYONE,
        read_receipts=False,
        group_add=Visibility.CONTACTS,
    )
    expected = PrivacySettings(
        last_seen=Visibility.CONTACTS,
        online=Visibility.NOBODY,
        profile_photo=Visibility.NOBODY,
        about=Visibility.CONTACTS,
        status=Visibility.EVERYONE,
        read_receipts=False,
        group_add=Visibility.CONTACTS,
    )
    assert await backend.store.update_privacy_settings(ALICE, everything_changed) == expected
    assert await backend.store.privacy_settings([ALICE]) == {ALICE: expected}
    back = await backend.store.update_privacy_settings(ALICE, PrivacyChanges(read_receipts=True))
    assert back.read_receipts is True and back.group_add == Visibility.CONTACTS


async def test_concurrent_changes_of_different_settings_both_survive(backend: Backend) -> None:
    await backend.seed(ALICE)
    await asyncio.gather(
        backend.store.update_privacy_settings(ALICE, PrivacyChanges(last_seen=Visibility.NOBODY)),
        backend.store.update_privacy_settings(ALICE, PrivacyChanges(group_add=Visibility.NOBODY)),
    )
    found = (await backend.store.privacy_settings([ALICE]))[ALICE]
    assert (found.last_seen, found.group_add) == (Visibility.NOBODY, Visibility.NOBODY)


async def test_many_users_are_read_at_once(backend: Backend) -> None:
    users = [f"user-{i:03d}" for i in range(IN_CHUNK + 5)]
    await backend.seed_all(*users)
    await backend.store.update_privacy_settings(users[-1], PrivacyChanges(online=Visibility.NOBODY))
    found = await backend.store.privacy_settings([*users, "nobody"])
    assert set(found) == set(users)
    assert found[users[-1]].online == Visibility.NOBODY
    assert found[users[0]] == PrivacySettings()
    assert await backend.store.existing_users([*users, "nobody"]) == set(users)


# --- contacts --------------------------------------------------------------------------------


async def test_contacts_among_answers_for_the_owner_only(backend: Backend) -> None:
    store = backend.store
    assert await change(store, add=["c1", "c2", "c3"]) == 3
    assert await change(store, BOB, add=["c4"]) == 1
    assert await store.contacts_among(ALICE, ["c1", "c3", "c4", "zz"]) == {"c1", "c3"}
    assert await store.contacts_among(BOB, ["c1", "c4"]) == {"c4"}
    assert await store.contacts_among(ALICE, []) == set()
    assert await store.contacts_among("nobody", ["c1"]) == set()


async def test_adding_a_contact_twice_and_removing_a_stranger_change_nothing(
    backend: Backend,
) -> None:
    store = backend.store
    assert await change(store, add=["c1", "c2"]) == 2
    assert await change(store, add=["c2", "c2", "c3"], remove=["stranger"]) == 3
    assert await change(store, remove=["c1", "c1", "stranger"]) == 2
    assert await everything(store) == ["c2", "c3"]
    assert await change(store, remove=["c2", "c3"]) == 0
    assert await everything(store) == []
    assert await change(store) == 0


async def test_over_the_limit_nothing_changes(backend: Backend) -> None:
    store = backend.store
    await change(store, add=["c1", "c2"], max_contacts=3)
    with pytest.raises(TooManyContacts) as raised:
        await change(store, add=["c3", "c4"], remove=["c9"], max_contacts=3)
    assert (raised.value.limit, raised.value.actual) == (3, 4)
    assert raised.value.setting == "users.max_contacts"
    assert await everything(store) == ["c1", "c2"]
    # Removing one makes room for the same request.
    assert await change(store, add=["c3", "c4"], remove=["c1"], max_contacts=3) == 3
    assert await everything(store) == ["c2", "c3", "c4"]


async def test_a_list_over_a_lowered_limit_can_still_shrink(backend: Backend) -> None:
    store = backend.store
    await change(store, add=["c1", "c2", "c3"])
    assert await change(store, remove=["c1"], max_contacts=1) == 2
    assert await change(store, add=["c2"], max_contacts=1) == 2  # already there: no growth
    with pytest.raises(TooManyContacts):
        await change(store, add=["c9"], remove=["c2"], max_contacts=1)
    assert await everything(store) == ["c2", "c3"]


async def test_a_repeated_request_id_changes_nothing_and_returns_the_first_count(
    backend: Backend,
) -> None:
    store = backend.store
    assert await change(store, add=["c1", "c2"], request_id="r1") == 2
    assert await change(store, remove=["c1", "c2"], request_id="r2") == 0
    assert await change(store, add=["c1", "c2"], request_id="r1") == 2
    assert await everything(store) == []
    # Request ids belong to their owner.
    assert await change(store, BOB, add=["c1"], request_id="r1") == 1


async def test_a_request_id_is_forgotten_after_its_time(backend: Backend) -> None:
    store = backend.store
    # Real time: the ScyllaDB adapter forgets through a TTL, the embedded one by `now`.
    assert await change(store, add=["c1"], request_id="r1", remember=1, now=time.time()) == 1
    await change(store, remove=["c1"])
    await asyncio.sleep(1.5)
    assert await change(store, add=["c1"], request_id="r1", remember=1, now=time.time()) == 1
    assert await everything(store) == ["c1"]


async def test_concurrent_changes_never_pass_the_limit(backend: Backend) -> None:
    store = backend.store
    batches = [[f"c{i}-{j}" for j in range(3)] for i in range(6)]
    outcomes = await asyncio.gather(
        *(change(store, add=batch, max_contacts=10) for batch in batches),
        return_exceptions=True,
    )
    applied = [o for o in outcomes if isinstance(o, int)]
    assert all(isinstance(o, int | TooManyContacts) for o in outcomes), outcomes
    assert len(applied) == 3
    stored = await everything(store)
    assert len(stored) == 9
    assert await change(store) == 9


async def test_one_request_may_add_five_hundred_contacts(backend: Backend) -> None:
    # The default users.max_contacts_per_request, in one batch.
    ids = [str(uuid.uuid4()) for _ in range(500)]
    assert await change(backend.store, add=ids) == 500
    assert await backend.store.contacts_among(ALICE, ids[::7]) == set(ids[::7])


async def test_contacts_are_listed_in_id_order_from_a_position(backend: Backend) -> None:
    store = backend.store
    await change(store, add=["d", "b", "e", "a", "c"])
    assert await store.list_contacts(ALICE, after="", limit=2) == ["a", "b"]
    assert await store.list_contacts(ALICE, after="b", limit=2) == ["c", "d"]
    assert await store.list_contacts(ALICE, after="d", limit=2) == ["e"]
    assert await store.list_contacts(ALICE, after="e", limit=2) == []
    assert await store.list_contacts(BOB, after="", limit=2) == []
