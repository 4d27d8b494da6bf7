"""The contract of the MessageStore port, written once and run against every adapter.

Adapters are built by the factories in `ADAPTERS`; adding a store (ScyllaDB, say) means
adding one async context manager factory there and nothing else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from chatconnect.model import (
    Conversation,
    DeviceAddress,
    DeviceKind,
    DeviceSummary,
    Envelope,
    EnvelopeType,
    InboxGap,
    InboxItem,
    Notice,
    NoticeType,
    Receipt,
    ReceiptType,
)
from chatconnect.router.domain.models import Acknowledged, Delivery, PendingSend, SendResult
from chatconnect.router.embedded import SqliteMessageStore
from chatconnect.router.ports import MessageStore
from chatconnect.router.scylla import ScyllaMessageStore
from chatconnect.router.sequences import SequenceAllocator
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from tests.scylla import empty_keyspace
from tests.servers import redis_url

NOW = 1_700_000_000.0
RETENTION = 30 * 24 * 3600.0

ALICE = DeviceAddress("alice", 1)
ALICE_LAPTOP = DeviceAddress("alice", 2)
BOB = DeviceAddress("bob", 1)
BOB_LAPTOP = DeviceAddress("bob", 2)
CAROL = DeviceAddress("carol", 1)
TO_BOB = Conversation(user_id="bob")


@asynccontextmanager
async def _embedded(request: pytest.FixtureRequest) -> AsyncIterator[MessageStore]:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    db = await Database.open(tmp_path / "db.sqlite", migrations=MIGRATIONS, synchronous="NORMAL")
    try:
        yield SqliteMessageStore(db)
    finally:
        await db.close()


@asynccontextmanager
async def _scylla(request: pytest.FixtureRequest) -> AsyncIterator[MessageStore]:
    redis = aioredis.Redis.from_url(redis_url())
    async with empty_keyspace(request.getfixturevalue("scylla_keyspace")) as cql:
        # A namespace of its own: the sequence counters start empty, like the tables.
        namespace = f"t{uuid.uuid4().hex[:8]}"
        sequences = SequenceAllocator(redis, cql, block=1000, namespace=namespace)
        try:
            yield ScyllaMessageStore(cql, sequences, gap_grace_seconds=3600)
        finally:
            await redis.aclose()


StoreFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[MessageStore]]

ADAPTERS: dict[str, StoreFactory] = {"embedded": _embedded, "scylla": _scylla}


@pytest.fixture(params=sorted(ADAPTERS))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MessageStore]:
    """A fresh, empty store of the adapter named by the param."""
    async with ADAPTERS[request.param](request) as opened:
        yield opened


# --- builders ------------------------------------------------------------------------------

_cmids = itertools.count(1)


def envelope(
    *,
    sender: DeviceAddress | None = ALICE,
    cmid: str = "",
    server_message_id: str = "",
    type: EnvelopeType = EnvelopeType.CIPHERTEXT,
    destination: Conversation = TO_BOB,
    content: bytes = b"ciphertext",
    server_time: float = NOW,
    expire_time: float = NOW + RETENTION,
    urgent: bool = False,
    receipt: Receipt | None = None,
    notice: Notice | None = None,
) -> Envelope:
    return Envelope(
        server_message_id=server_message_id or uuid.uuid4().hex,
        sequence=0,
        type=type,
        sender=sender,
        client_message_id=cmid,
        destination=destination,
        content=content,
        server_time=server_time,
        expire_time=expire_time,
        urgent=urgent,
        receipt=receipt,
        notice=notice,
    )


def pending(
    recipients: tuple[DeviceAddress, ...] = (BOB,),
    *,
    sender: DeviceAddress | None = ALICE,
    cmid: str | None = None,
    server_message_id: str | None = None,
    server_time: float = NOW,
    expire_time: float = NOW + RETENTION,
    **fields: object,
) -> PendingSend:
    """A send of one envelope to each of `recipients` (fresh ids unless given)."""
    if cmid is None:
        cmid = f"cmid-{next(_cmids)}" if sender is not None else ""
    smid = server_message_id or uuid.uuid4().hex
    env = envelope(sender=sender, cmid=cmid, server_message_id=smid, server_time=server_time,
                   expire_time=expire_time, **fields)  # type: ignore[arg-type]
    return PendingSend(sender, cmid, smid, server_time, expire_time,
                       tuple(Delivery(r, env) for r in recipients))


async def read_all(store: MessageStore, device: DeviceAddress, *, now: float = NOW,
                   after: int = 0) -> list[InboxItem]:
    return await store.read(device, after_sequence=after, limit=10_000, now=now)


def sequences(items: list[InboxItem]) -> list[int]:
    return [i.sequence for i in items if isinstance(i, Envelope)]


def key(item: InboxItem) -> object:
    """Envelopes by sequence, gaps as (first, last)."""
    if isinstance(item, InboxGap):
        return (item.first_sequence, item.last_sequence)
    return item.sequence


# --- commit and sequences ------------------------------------------------------------------


async def test_commit_assigns_sequences_one_two_three_per_inbox_independently(
    store: MessageStore,
) -> None:
    r1, d1 = await store.commit(pending((BOB,)))
    r2, d2 = await store.commit(pending((BOB, CAROL)))
    r3, d3 = await store.commit(pending((CAROL,)))
    r4, d4 = await store.commit(pending((BOB,)))
    assert [(d.recipient, d.envelope.sequence) for d in d1 + d2 + d3 + d4] == [
        (BOB, 1), (BOB, 2), (CAROL, 1), (CAROL, 2), (BOB, 3),
    ]
    assert not any(r.duplicate for r in (r1, r2, r3, r4))
    assert sequences(await read_all(store, BOB)) == [1, 2, 3]
    assert sequences(await read_all(store, CAROL)) == [1, 2]
    # Two devices of one user are two inboxes.
    _, d5 = await store.commit(pending((BOB_LAPTOP,)))
    assert d5[0].envelope.sequence == 1


async def test_commit_result_and_deliveries_describe_what_was_written(store: MessageStore) -> None:
    send = pending((BOB, BOB_LAPTOP), cmid="m-1", server_message_id="s-1", server_time=NOW + 1)
    result, deliveries = await store.commit(send)
    assert result == SendResult("m-1", "s-1", NOW + 1, duplicate=False)
    assert [d.recipient for d in deliveries] == [BOB, BOB_LAPTOP]
    for delivery, original in zip(deliveries, send.deliveries, strict=True):
        assert delivery.envelope == dataclasses.replace(original.envelope, sequence=1)
    assert await read_all(store, BOB) == [deliveries[0].envelope]


async def test_second_commit_of_same_client_message_id_is_a_duplicate_and_writes_nothing(
    store: MessageStore,
) -> None:
    first, _ = await store.commit(pending((BOB,), cmid="m-1", server_message_id="s-1",
                                          server_time=NOW))
    retry = pending((BOB, CAROL), cmid="m-1", server_message_id="s-2", server_time=NOW + 5,
                    content=b"different")
    again, deliveries = await store.commit(retry)
    assert again == SendResult("m-1", "s-1", NOW, duplicate=True)
    assert again.server_message_id == first.server_message_id
    assert again.server_time == first.server_time
    assert deliveries == []
    items = await read_all(store, BOB)
    assert [(i.server_message_id, i.content) for i in items if isinstance(i, Envelope)] == [
        ("s-1", b"ciphertext")
    ]
    assert await read_all(store, CAROL) == []
    # The next real send continues the sequence. (A distributed store may skip numbers a
    # retry drew before it was recognised; it never reuses one.)
    _, next_deliveries = await store.commit(pending((BOB,)))
    assert next_deliveries[0].envelope.sequence >= 2
    assert sequences(await read_all(store, BOB)) == [1, next_deliveries[0].envelope.sequence]


async def test_same_client_message_id_from_another_sender_is_another_send(
    store: MessageStore,
) -> None:
    a, _ = await store.commit(pending((BOB,), sender=ALICE, cmid="m-1"))
    b, _ = await store.commit(pending((BOB,), sender=ALICE_LAPTOP, cmid="m-1"))
    c, _ = await store.commit(pending((BOB,), sender=CAROL, cmid="m-1"))
    assert not (a.duplicate or b.duplicate or c.duplicate)
    assert len({a.server_message_id, b.server_message_id, c.server_message_id}) == 3
    assert sequences(await read_all(store, BOB)) == [1, 2, 3]


async def test_find_send_returns_the_recorded_result(store: MessageStore) -> None:
    await store.commit(pending((BOB,), cmid="m-1", server_message_id="s-1", server_time=NOW + 2))
    found = await store.find_send(ALICE, "m-1")
    assert found is not None
    assert (found.client_message_id, found.server_message_id, found.server_time) == (
        "m-1", "s-1", NOW + 2,
    )
    assert found.duplicate  # what a retry reports


async def test_find_send_returns_none_for_unknown_sends(store: MessageStore) -> None:
    assert await store.find_send(ALICE, "never-sent") is None
    await store.commit(pending((BOB,), sender=ALICE, cmid="m-1"))
    assert await store.find_send(ALICE, "m-2") is None
    assert await store.find_send(ALICE_LAPTOP, "m-1") is None
    assert await store.find_send(BOB, "m-1") is None


async def test_concurrent_commits_to_one_inbox_get_distinct_gap_free_sequences(
    store: MessageStore,
) -> None:
    sends = [pending((BOB,), cmid=f"c-{i}") for i in range(50)]
    outcomes = await asyncio.gather(*(store.commit(s) for s in sends))
    assigned = [deliveries[0].envelope.sequence for _, deliveries in outcomes]
    assert sorted(assigned) == list(range(1, 51))
    assert not any(result.duplicate for result, _ in outcomes)
    items = await read_all(store, BOB)
    assert sequences(items) == list(range(1, 51))
    assert {i.server_message_id for i in items if isinstance(i, Envelope)} == {
        s.server_message_id for s in sends
    }


async def test_concurrent_commits_of_the_same_send_store_exactly_one(store: MessageStore) -> None:
    sends = [pending((BOB, CAROL), cmid="same", server_message_id=f"s-{i}") for i in range(20)]
    outcomes = await asyncio.gather(*(store.commit(s) for s in sends))
    originals = [(r, d) for r, d in outcomes if not r.duplicate]
    assert len(originals) == 1
    winner, deliveries = originals[0]
    assert len(deliveries) == 2
    assert {r.server_message_id for r, _ in outcomes} == {winner.server_message_id}
    # A duplicate that raced the original may have completed its writes: then it reports
    # exactly the original's deliveries (same sequences), never new ones.
    assert all(d in ([], deliveries) for r, d in outcomes if r.duplicate)
    for delivery in deliveries:
        items = await read_all(store, delivery.recipient)
        assert [(i.sequence, i.server_message_id) for i in items if isinstance(i, Envelope)] == [
            (delivery.envelope.sequence, winner.server_message_id)
        ]


async def test_server_generated_sends_are_never_deduplicated(store: MessageStore) -> None:
    results = []
    for _ in range(3):
        result, deliveries = await store.commit(
            pending((BOB,), sender=None, cmid="", type=EnvelopeType.SERVER_NOTICE)
        )
        assert len(deliveries) == 1
        results.append(result)
    assert not any(r.duplicate for r in results)
    assert sequences(await read_all(store, BOB)) == [1, 2, 3]


# --- read ----------------------------------------------------------------------------------


async def test_read_returns_items_in_order_and_honours_after_sequence_and_limit(
    store: MessageStore,
) -> None:
    for _ in range(7):
        await store.commit(pending((BOB,)))
    assert sequences(await read_all(store, BOB)) == [1, 2, 3, 4, 5, 6, 7]
    assert sequences(await store.read(BOB, after_sequence=0, limit=3, now=NOW)) == [1, 2, 3]
    assert sequences(await store.read(BOB, after_sequence=3, limit=3, now=NOW)) == [4, 5, 6]
    assert sequences(await store.read(BOB, after_sequence=6, limit=3, now=NOW)) == [7]
    assert await store.read(BOB, after_sequence=7, limit=3, now=NOW) == []
    assert await store.read(BOB, after_sequence=100, limit=3, now=NOW) == []
    assert await read_all(store, CAROL) == []


async def test_reading_does_not_consume(store: MessageStore) -> None:
    await store.commit(pending((BOB,)))
    first = await read_all(store, BOB)
    assert await read_all(store, BOB) == first


# --- acknowledge ---------------------------------------------------------------------------


async def test_acknowledge_removes_by_server_message_id_and_returns_what_it_removed(
    store: MessageStore,
) -> None:
    ids = []
    for _ in range(4):
        result, _ = await store.commit(pending((BOB, CAROL)))
        ids.append(result.server_message_id)
    before = {i.server_message_id: i for i in await read_all(store, BOB)
              if isinstance(i, Envelope)}
    removed = await store.acknowledge(BOB, [ids[3], "no-such-id", ids[1]])
    assert removed == [Acknowledged.of(before[i]) for i in (ids[1], ids[3])]  # sequence order
    assert sequences(await read_all(store, BOB)) == [1, 3]
    # Another device's inbox is untouched, and is not reachable through Bob's acks.
    assert sequences(await read_all(store, CAROL)) == [1, 2, 3, 4]
    assert await store.acknowledge(BOB, [ids[1], ids[3]]) == []
    assert await store.acknowledge(DeviceAddress("bob", 9), [ids[0]]) == []
    assert sequences(await read_all(store, BOB)) == [1, 3]


async def test_acknowledge_of_nothing_or_unknown_ids_changes_nothing(store: MessageStore) -> None:
    await store.commit(pending((BOB,)))
    assert await store.acknowledge(BOB, []) == []
    assert await store.acknowledge(BOB, ["unknown", "gap:5:9", "gap:x", ""]) == []
    assert sequences(await read_all(store, BOB)) == [1]


async def test_sequences_are_never_reused_after_the_inbox_is_emptied(store: MessageStore) -> None:
    ids = [(await store.commit(pending((BOB,))))[0].server_message_id for _ in range(3)]
    await store.acknowledge(BOB, ids)
    assert await read_all(store, BOB) == []
    _, deliveries = await store.commit(pending((BOB,)))
    assert deliveries[0].envelope.sequence == 4
    assert sequences(await read_all(store, BOB)) == [4]


# --- retention -----------------------------------------------------------------------------

T1 = NOW + 100
T2 = NOW + 200


async def _commit_expiring(store: MessageStore, expire_times: list[float],
                           device: DeviceAddress = BOB) -> list[str]:
    ids = []
    for expire in expire_times:
        result, _ = await store.commit(pending((device,), expire_time=expire))
        ids.append(result.server_message_id)
    return ids


async def test_expired_envelopes_are_never_read_and_come_back_as_one_gap(
    store: MessageStore,
) -> None:
    await _commit_expiring(store, [T1, T1, T1, T2, T1, T2])
    # Not expired yet: everything is there.
    assert sequences(await read_all(store, BOB, now=T1 - 1)) == [1, 2, 3, 4, 5, 6]
    items = await read_all(store, BOB, now=T1)
    assert items[0] == InboxGap(1, 3)
    assert [key(i) for i in items] == [(1, 3), 4, (5, 5), 6]
    assert not any(isinstance(i, Envelope) and i.expire_time <= T1 for i in items)
    assert items[0].gap_id == "gap:1:3"


async def test_acknowledged_rows_split_an_expired_run(store: MessageStore) -> None:
    ids = await _commit_expiring(store, [T1] * 5)
    await store.acknowledge(BOB, [ids[2]])
    assert [key(i) for i in await read_all(store, BOB, now=T1)] == [(1, 2), (4, 5)]


async def test_gaps_honour_after_sequence_and_limit(store: MessageStore) -> None:
    await _commit_expiring(store, [T1, T1, T1, T2, T2])
    assert [key(i) for i in await store.read(BOB, after_sequence=0, limit=1, now=T1)] == [(1, 3)]
    assert [key(i) for i in await store.read(BOB, after_sequence=0, limit=2, now=T1)] == [(1, 3), 4]
    assert [key(i) for i in await store.read(BOB, after_sequence=3, limit=5, now=T1)] == [4, 5]


async def test_acknowledging_a_gap_by_its_id_removes_it(store: MessageStore) -> None:
    ids = await _commit_expiring(store, [T1, T1, T2])
    await _commit_expiring(store, [T1, T1], device=CAROL)
    [gap, _] = await read_all(store, BOB, now=T1)
    assert gap == InboxGap(1, 2)
    assert await read_all(store, CAROL, now=T1) == [InboxGap(1, 2)]
    assert await store.acknowledge(BOB, [gap.gap_id]) == []
    assert [key(i) for i in await read_all(store, BOB, now=T1)] == [3]
    # A gap belongs to its device: Carol's gap with the same bounds is still there.
    assert await read_all(store, CAROL, now=T1) == [InboxGap(1, 2)]
    # Acknowledging it again, or an expired envelope by its id, changes nothing.
    assert await store.acknowledge(BOB, [gap.gap_id, ids[0]]) == []
    assert [key(i) for i in await read_all(store, BOB, now=T1)] == [3]


async def test_a_run_that_expires_in_steps_is_reported_as_one_gap(store: MessageStore) -> None:
    await _commit_expiring(store, [T1, T1, T1, T2, T2 + 100])
    assert [key(i) for i in await read_all(store, BOB, now=T1)] == [(1, 3), 4, 5]
    # Sequence 4 expires later; 1..4 is now one consecutive expired run.
    assert [key(i) for i in await read_all(store, BOB, now=T2)] == [(1, 4), 5]


async def test_a_gap_acknowledged_by_an_old_id_keeps_its_unseen_tail(store: MessageStore) -> None:
    await _commit_expiring(store, [T1, T1, T1, T2, T2 + 100])
    [seen, *_] = await read_all(store, BOB, now=T1)
    assert seen == InboxGap(1, 3)
    # 4 expires after the device saw the gap, then the device acknowledges what it saw.
    await read_all(store, BOB, now=T2)
    await store.acknowledge(BOB, [seen.gap_id])
    assert [key(i) for i in await read_all(store, BOB, now=T2)] == [(4, 4), 5]
    await store.acknowledge(BOB, ["gap:4:4"])
    assert [key(i) for i in await read_all(store, BOB, now=T2)] == [5]


async def test_sequences_continue_after_everything_expired(store: MessageStore) -> None:
    await _commit_expiring(store, [T1, T1])
    [gap] = await read_all(store, BOB, now=T1)
    await store.acknowledge(BOB, [gap.gap_id])
    _, deliveries = await store.commit(pending((BOB,), expire_time=T2 + RETENTION))
    assert deliveries[0].envelope.sequence == 3


# --- round trip ----------------------------------------------------------------------------


async def test_every_envelope_field_round_trips_exactly(store: MessageStore) -> None:
    ciphertext = envelope(
        sender=ALICE_LAPTOP, cmid="round-trip ✓", type=EnvelopeType.PREKEY_CIPHERTEXT,
        destination=Conversation(user_id="bob"), content=bytes(range(256)) + b"\x00",
        server_time=NOW + 0.123456789, expire_time=NOW + RETENTION + 0.987654321, urgent=True,
    )
    group = envelope(sender=CAROL, cmid="g", type=EnvelopeType.SENDER_KEY_CIPHERTEXT,
                     destination=Conversation(group_id="group-1"), content=b"\xff")
    receipt = envelope(
        sender=BOB_LAPTOP, cmid="", type=EnvelopeType.RECEIPT,
        destination=Conversation(user_id="alice"), content=b"",
        receipt=Receipt(ReceiptType.READ, BOB_LAPTOP, ("s-1", "s-2", "s-3"), NOW + 1.5),
    )
    notice = envelope(
        sender=None, cmid="", type=EnvelopeType.SERVER_NOTICE,
        destination=Conversation(user_id="carol"), content=b"",
        notice=Notice(NoticeType.DEVICE_LIST_CHANGED, "carol", (
            DeviceSummary(1, 4242, DeviceKind.PHONE, NOW - 1000.25),
            DeviceSummary(3, 17, DeviceKind.DESKTOP, NOW - 0.5),
        )),
    )
    empty_notice = envelope(
        sender=None, cmid="", type=EnvelopeType.SERVER_NOTICE, content=b"",
        notice=Notice(NoticeType.PREKEYS_LOW, "bob"),
    )
    originals = [ciphertext, group, receipt, notice, empty_notice]
    for env in originals:
        await store.commit(PendingSend(
            env.sender, env.client_message_id, env.server_message_id, env.server_time,
            env.expire_time, (Delivery(BOB, env),),
        ))
    expected = [dataclasses.replace(e, sequence=n) for n, e in enumerate(originals, start=1)]
    assert await read_all(store, BOB) == expected
    removed = await store.acknowledge(BOB, [e.server_message_id for e in originals])
    assert removed == [Acknowledged.of(e) for e in expected]
