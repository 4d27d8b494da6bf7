"""The contracts of the ReadMarkerStore, TombstoneStore and MessageOrigins ports, written
once and run against every adapter (embedded SQLite and ScyllaDB on the test keyspace)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from chatconnect.devices.domain.models import (
    DeleteScope,
    ReadMarker,
    Tombstone,
    TombstoneCursor,
)
from chatconnect.devices.ports import MessageOrigins, ReadMarkerStore, TombstoneStore
from chatconnect.devices.sync_embedded import SqliteReadMarkerStore, SqliteTombstoneStore
from chatconnect.devices.sync_scylla import ScyllaReadMarkerStore, ScyllaTombstoneStore
from chatconnect.model import Conversation, DeviceAddress
from chatconnect.router.domain.origins import MessageOrigin
from chatconnect.router.origins_embedded import SqliteMessageOrigins, insert_origin
from chatconnect.router.origins_scylla import ScyllaMessageOrigins, origin_statement
from chatconnect.storage.cql import CqlSession
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from tests.devices.backends import prepare_adapter

NOW = 1_700_000_000.0
RETENTION = 3600.0
ALICE, BOB, CAROL = "alice", "bob", "carol"
PHONE, LAPTOP = DeviceAddress(ALICE, 1), DeviceAddress(ALICE, 2)
WITH_BOB = Conversation(user_id=BOB)
GROUP = Conversation(group_id="g1")


@dataclass(frozen=True)
class SyncStores:
    """The three stores of one adapter, and a way to record an origin as the router does."""

    markers: ReadMarkerStore
    tombstones: TombstoneStore
    origins: MessageOrigins
    record: Callable[[MessageOrigin], Awaitable[None]]


@pytest.fixture(params=["embedded", "scylla"])
def adapter_name(request: pytest.FixtureRequest) -> str:
    return prepare_adapter(request)


@pytest.fixture
async def stores(
    adapter_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SyncStores]:
    if adapter_name == "scylla":
        cql: CqlSession = request.getfixturevalue("cql")

        async def record_cql(origin: MessageOrigin) -> None:
            statement = origin_statement(origin)
            await cql.execute("record_origin", statement.cql, statement.params)

        yield SyncStores(
            ScyllaReadMarkerStore(cql),
            ScyllaTombstoneStore(cql),
            ScyllaMessageOrigins(cql),
            record_cql,
        )
        return
    db = await Database.open(tmp_path / "db.sqlite", migrations=MIGRATIONS, synchronous="NORMAL")

    async def record_sqlite(origin: MessageOrigin) -> None:
        async with db.write("record_origin") as tx:
            await tx.run(partial(insert_origin, origin=origin))

    try:
        yield SyncStores(
            SqliteReadMarkerStore(db),
            SqliteTombstoneStore(db),
            SqliteMessageOrigins(db),
            record_sqlite,
        )
    finally:
        await db.close()


def marker(time: float, message_id: str, conversation: Conversation = WITH_BOB) -> ReadMarker:
    return ReadMarker(conversation, time, message_id)


def tombstone(
    message_id: str,
    *,
    user_id: str = ALICE,
    conversation: Conversation = WITH_BOB,
    scope: DeleteScope = DeleteScope.FOR_ME,
    at: float = NOW,
    by: DeviceAddress = PHONE,
    retention: float = RETENTION,
) -> Tombstone:
    return Tombstone(user_id, conversation, message_id, scope, at, by, at + retention)


START = TombstoneCursor(0.0, "", "")


async def listed(
    store: TombstoneStore, user_id: str = ALICE, *, now: float = NOW
) -> list[Tombstone]:
    return await store.list_tombstones(user_id, after=START, limit=1000, now=now)


# --- read markers -----------------------------------------------------------------------------


async def test_a_marker_moves_forward_and_never_back(stores: SyncStores) -> None:
    store = stores.markers
    assert await store.advance(ALICE, [marker(NOW, "m5")]) == [marker(NOW, "m5")]
    assert await store.advance(ALICE, [marker(NOW + 10, "m9")]) == [marker(NOW + 10, "m9")]
    # Stale: the stored marker is returned unchanged.
    assert await store.advance(ALICE, [marker(NOW + 5, "m7")]) == [marker(NOW + 10, "m9")]
    assert await store.list_markers(ALICE, after_conversation_key="", limit=10) == [
        marker(NOW + 10, "m9")
    ]


async def test_equal_times_are_ordered_by_message_id(stores: SyncStores) -> None:
    store = stores.markers
    await store.advance(ALICE, [marker(NOW, "b")])
    assert await store.advance(ALICE, [marker(NOW, "a")]) == [marker(NOW, "b")]
    assert await store.advance(ALICE, [marker(NOW, "c")]) == [marker(NOW, "c")]


async def test_markers_are_per_account_and_per_conversation(stores: SyncStores) -> None:
    store = stores.markers
    stored = await store.advance(ALICE, [marker(NOW, "x"), marker(NOW + 1, "y", GROUP)])
    assert stored == [marker(NOW, "x"), marker(NOW + 1, "y", GROUP)]
    assert await store.list_markers(BOB, after_conversation_key="", limit=10) == []
    assert {
        m.conversation for m in await store.list_markers(ALICE, after_conversation_key="", limit=10)
    } == {WITH_BOB, GROUP}


async def test_markers_are_listed_in_pages_by_conversation(stores: SyncStores) -> None:
    store = stores.markers
    conversations = [Conversation(user_id=f"user-{i:02d}") for i in range(7)]
    await store.advance(ALICE, [marker(NOW, f"m{i}", c) for i, c in enumerate(conversations)])
    first = await store.list_markers(ALICE, after_conversation_key="", limit=3)
    rest = await store.list_markers(ALICE, after_conversation_key="u:user-02", limit=10)
    assert [m.conversation for m in first + rest] == conversations


async def test_racing_updates_leave_the_furthest_marker(stores: SyncStores) -> None:
    store = stores.markers
    updates = [marker(NOW + i, f"m{i:03d}") for i in range(40)]
    # Every device races every other; the order they land in must not matter.
    await asyncio.gather(*(store.advance(ALICE, [m]) for m in reversed(updates)))
    assert await store.list_markers(ALICE, after_conversation_key="", limit=10) == [updates[-1]]


# --- tombstones --------------------------------------------------------------------------------


async def test_a_tombstone_is_stored_and_listed(stores: SyncStores) -> None:
    written = tombstone("m1")
    assert await stores.tombstones.put([written], now=NOW) == [written]
    assert await listed(stores.tombstones) == [written]
    assert await listed(stores.tombstones, BOB) == []


async def test_deleting_a_message_twice_keeps_one_tombstone_with_the_first_time(
    stores: SyncStores,
) -> None:
    first = tombstone("m1", at=NOW, by=PHONE)
    again = tombstone("m1", at=NOW + 5, by=LAPTOP)
    await stores.tombstones.put([first], now=NOW)
    assert await stores.tombstones.put([again], now=NOW + 5) == [first]
    assert await listed(stores.tombstones, now=NOW + 5) == [first]


async def test_two_devices_deleting_at_once_converge_on_one_tombstone(stores: SyncStores) -> None:
    racers = [tombstone("m1", at=NOW + i / 100, by=DeviceAddress(ALICE, i)) for i in range(1, 9)]
    results = await asyncio.gather(*(stores.tombstones.put([t], now=NOW + 1) for t in racers))
    winners = {r[0] for r in results}
    assert len(winners) == 1
    assert await listed(stores.tombstones, now=NOW + 1) == list(winners)


async def test_for_everyone_outranks_for_me_and_keeps_the_first_time(stores: SyncStores) -> None:
    mine = tombstone("m1", scope=DeleteScope.FOR_ME, at=NOW, by=LAPTOP)
    everyone = tombstone("m1", scope=DeleteScope.FOR_EVERYONE, at=NOW + 3, by=PHONE)
    await stores.tombstones.put([mine], now=NOW)
    raised = dataclasses.replace(mine, scope=DeleteScope.FOR_EVERYONE, deleted_by=PHONE)
    assert await stores.tombstones.put([everyone], now=NOW + 3) == [raised]
    # A late FOR_ME (another device, a retry) never lowers it.
    assert await stores.tombstones.put([mine], now=NOW + 4) == [raised]
    assert await listed(stores.tombstones, now=NOW + 4) == [raised]


async def test_racing_for_me_and_for_everyone_converge_on_for_everyone(
    stores: SyncStores,
) -> None:
    racers = [
        tombstone(
            f"m{n}",
            scope=DeleteScope.FOR_EVERYONE if i % 2 else DeleteScope.FOR_ME,
            at=NOW + i / 100,
            by=DeviceAddress(ALICE, i + 1),
        )
        for n in range(5)
        for i in range(4)
    ]
    await asyncio.gather(*(stores.tombstones.put([t], now=NOW + 1) for t in racers))
    final = await listed(stores.tombstones, now=NOW + 1)
    assert sorted(t.server_message_id for t in final) == [f"m{n}" for n in range(5)]
    assert {t.scope for t in final} == {DeleteScope.FOR_EVERYONE}


async def test_tombstones_are_listed_oldest_first_in_pages(stores: SyncStores) -> None:
    written = [tombstone(f"m{i}", at=NOW + i) for i in range(7)]
    await stores.tombstones.put(list(reversed(written)), now=NOW)
    first = await stores.tombstones.list_tombstones(ALICE, after=START, limit=3, now=NOW)
    assert first == written[:3]
    rest = await stores.tombstones.list_tombstones(ALICE, after=first[-1].cursor, limit=10, now=NOW)
    assert rest == written[3:]
    since = TombstoneCursor(NOW + 5, "", "")
    assert (
        await stores.tombstones.list_tombstones(ALICE, after=since, limit=10, now=NOW)
        == (written[5:])
    )


async def test_tombstones_sharing_a_time_are_all_listed(stores: SyncStores) -> None:
    same_time = [
        tombstone("m1", conversation=GROUP),
        tombstone("m2"),
        tombstone("m1"),
    ]
    await stores.tombstones.put(same_time, now=NOW)
    pages: list[Tombstone] = []
    after = START
    while page := await stores.tombstones.list_tombstones(ALICE, after=after, limit=1, now=NOW):
        pages += page
        after = page[-1].cursor
    assert sorted((t.conversation.group_id, t.server_message_id) for t in pages) == [
        ("", "m1"),
        ("", "m2"),
        ("g1", "m1"),
    ]


async def test_an_expired_tombstone_is_never_listed(stores: SyncStores) -> None:
    short = tombstone("old", retention=2)
    kept = tombstone("new", at=NOW + 1)
    await stores.tombstones.put([short, kept], now=NOW)
    assert await listed(stores.tombstones, now=NOW + 2) == [kept]


async def test_a_message_deleted_again_after_its_tombstone_expired_gets_a_new_one(
    stores: SyncStores,
) -> None:
    await stores.tombstones.put([tombstone("m1", retention=1)], now=NOW)
    later = tombstone("m1", at=NOW + 10)
    assert await stores.tombstones.put([later], now=NOW + 10) == [later]
    assert await listed(stores.tombstones, now=NOW + 10) == [later]


# --- message origins ----------------------------------------------------------------------------


def origin(
    message_id: str, *, destination: Conversation = WITH_BOB, at: float = NOW
) -> MessageOrigin:
    return MessageOrigin(message_id, PHONE, destination, at, at + RETENTION)


async def test_recorded_origins_are_found_by_id(stores: SyncStores) -> None:
    one, group = origin("m1"), origin("m2", destination=GROUP)
    await stores.record(one)
    await stores.record(group)
    await stores.record(one)  # a retried commit records it again: nothing changes
    found = await stores.origins.find(["m1", "m2", "missing", "m1"], now=NOW)
    assert found == {"m1": one, "m2": group}


async def test_an_origin_past_its_retention_is_not_found(stores: SyncStores) -> None:
    await stores.record(origin("m1"))
    assert await stores.origins.find(["m1"], now=NOW + RETENTION) == {}


async def test_the_conversation_of_an_origin_is_seen_from_each_side() -> None:
    one = origin("m1")
    assert one.conversation_of(ALICE) == WITH_BOB
    assert one.conversation_of(BOB) == Conversation(user_id=ALICE)
    assert one.conversation_of(CAROL) is None
    assert origin("m2", destination=GROUP).conversation_of(CAROL) == GROUP
