"""The delivery loop over a real inbox (SQLite store) and a real in-process bus."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chatconnect.bus.inprocess import InProcessBus
from chatconnect.bus.ports import DeviceRevoked, InboxChanged
from chatconnect.devices.domain.models import DeviceRecord
from chatconnect.devices.ports import DeviceDirectory
from chatconnect.gateway.domain.delivery import (
    DeliveryLoop,
    DeviceRevokedWhileConnected,
    Drained,
    Outbound,
)
from chatconnect.model import (
    Conversation,
    DeviceAddress,
    DeviceKind,
    Envelope,
    EnvelopeType,
    InboxItem,
)
from chatconnect.router.config import RouterConfig
from chatconnect.router.domain.inbox import InboxService
from chatconnect.router.domain.models import Delivery, PendingSend
from chatconnect.router.domain.sending import Deliverer
from chatconnect.router.embedded import SqliteMessageStore
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from tests.router.builders import embedded_group_reading

NOW = 1_700_000_000.0
ALICE = DeviceAddress("alice", 1)
BOB = DeviceAddress("bob", 1)


class Directory(DeviceDirectory):
    """Alice and Bob with one device each (a test double of the port)."""

    async def list_devices(self, user_id: str) -> list[DeviceRecord]:
        if user_id not in ("alice", "bob"):
            return []
        return [DeviceRecord(user_id, 1, "inc", 7, DeviceKind.PHONE, b"", NOW, NOW)]

    async def identity_key(self, user_id: str) -> bytes | None:
        return b"key"

    async def is_current(self, device: DeviceAddress, incarnation: str) -> bool:
        return True


class CountingStore(SqliteMessageStore):
    """The SQLite store, counting reads; `hidden` sequences are not readable yet (as if
    their commit had not landed, which happens in the distributed store)."""

    reads = 0
    hidden: frozenset[int] = frozenset()

    async def read(self, device: DeviceAddress, *, after_sequence: int, limit: int,
                   now: float) -> list[InboxItem]:
        self.reads += 1
        items = await super().read(device, after_sequence=after_sequence, limit=limit, now=now)
        return [i for i in items if not (isinstance(i, Envelope) and i.sequence in self.hidden)]


@dataclass
class World:
    store: CountingStore
    bus: InProcessBus
    deliverer: Deliverer
    inbox: InboxService
    emitted: list[Outbound] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    in_order: bool = True

    async def send(self, n: int = 1, *, push: bool = True, content: bytes = b"hi") -> list[str]:
        """Alice sends `n` messages to Bob; `push=False` commits without a bus event."""
        ids = []
        for _ in range(n):
            smid = uuid.uuid4().hex
            envelope = Envelope(smid, 0, EnvelopeType.CIPHERTEXT, ALICE, uuid.uuid4().hex,
                                Conversation(user_id="bob"), content, NOW, NOW + 3600)
            send = PendingSend(ALICE, envelope.client_message_id, smid, NOW, NOW + 3600,
                               (Delivery(BOB, envelope),))
            if push:
                await self.deliverer.commit_and_push(send)
            else:
                await self.store.commit(send)
            ids.append(smid)
        return ids

    async def start(self, *, window: int = 100, page_size: int = 100) -> DeliveryLoop:
        async def emit(item: Outbound) -> None:
            self.emitted.append(item)

        loop = DeliveryLoop(BOB, inbox=self.inbox, window=window, page_size=page_size,
                            emit=emit)
        subscription = await self.bus.subscribe(BOB)
        self.tasks.append(asyncio.create_task(loop.run(subscription)))
        return loop

    def envelopes(self) -> list[Envelope]:
        return [i for i in self.emitted if isinstance(i, Envelope)]

    async def ack(self, loop: DeliveryLoop, ids: list[str]) -> None:
        await self.inbox.acknowledge(BOB, ids)
        loop.acknowledged(ids)


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Waits until `condition()` holds."""
    for _ in range(int(timeout / 0.002)):
        if condition():
            return
        await asyncio.sleep(0.002)
    raise TimeoutError("condition never held")


async def settle() -> None:
    """Gives the loop time to do anything it was going to do."""
    await asyncio.sleep(0.05)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    db = await Database.open(tmp_path / "db.sqlite", migrations=MIGRATIONS, synchronous="NORMAL")
    store = CountingStore(db)
    bus = InProcessBus()
    deliverer = Deliverer(store=store, bus=bus)
    inbox = InboxService(store=store, directory=Directory(), deliverer=deliverer,
                         groups=embedded_group_reading(db, lambda: NOW),
                         config=RouterConfig(), clock=lambda: NOW)
    w = World(store, bus, deliverer, inbox)
    try:
        yield w
    finally:
        for task in w.tasks:
            task.cancel()
        await asyncio.gather(*w.tasks, return_exceptions=True)
        await db.close()
    # Whatever a test did, nothing was emitted twice (or out of order, unless commits were).
    sequences = [e.sequence for e in w.envelopes()]
    assert len(sequences) == len(set(sequences))
    if w.in_order:
        assert sequences == sorted(sequences)


async def test_backlog_arrives_in_sequence_order_then_drained(world: World) -> None:
    ids = await world.send(12)
    await world.start(page_size=5)
    await until(lambda: any(isinstance(i, Drained) for i in world.emitted))
    await settle()
    assert [(e.sequence, e.server_message_id) for e in world.envelopes()] == list(
        zip(range(1, 13), ids, strict=True)
    )
    assert world.emitted[-1] == Drained(12)
    assert len(world.emitted) == 13


async def test_an_empty_inbox_is_drained_at_once(world: World) -> None:
    await world.start()
    await until(lambda: bool(world.emitted))
    await settle()
    assert world.emitted == [Drained(0)]


async def test_never_more_than_window_items_are_unacknowledged(world: World) -> None:
    ids = await world.send(12)
    loop = await world.start(window=5)
    await until(lambda: len(world.emitted) >= 5)
    await settle()
    assert [e.sequence for e in world.envelopes()] == [1, 2, 3, 4, 5]
    assert len(world.emitted) == 5  # no Drained: the backlog is not all out
    await world.ack(loop, ids[:2])
    await until(lambda: len(world.emitted) >= 7)
    await settle()
    assert [e.sequence for e in world.envelopes()] == list(range(1, 8))
    await world.ack(loop, ids[2:7])
    await until(lambda: len(world.emitted) >= 12)
    await settle()
    assert [e.sequence for e in world.envelopes()] == list(range(1, 13))
    assert not any(isinstance(i, Drained) for i in world.emitted)  # window full again
    await world.ack(loop, ids[7:8])
    await until(lambda: isinstance(world.emitted[-1], Drained))
    assert world.emitted[-1] == Drained(12)
    assert len(world.envelopes()) == 12


async def test_a_live_envelope_in_order_is_emitted_without_another_store_read(
    world: World,
) -> None:
    await world.send(2)
    await world.start()
    await until(lambda: bool(world.emitted) and isinstance(world.emitted[-1], Drained))
    reads = world.store.reads
    [live] = await world.send(1)
    await until(lambda: len(world.envelopes()) == 3)
    [second_live] = await world.send(1)
    await until(lambda: len(world.envelopes()) == 4)
    await settle()
    assert [e.server_message_id for e in world.envelopes()[2:]] == [live, second_live]
    assert [e.sequence for e in world.envelopes()] == [1, 2, 3, 4]
    assert world.store.reads == reads


async def test_a_jump_in_sequence_makes_the_loop_read_the_store(world: World) -> None:
    await world.start()
    await until(lambda: world.emitted == [Drained(0)])
    silent = await world.send(1, push=False)  # no bus event for sequence 1
    pushed = await world.send(1)
    await until(lambda: len(world.envelopes()) == 2)
    await settle()
    assert [e.server_message_id for e in world.envelopes()] == silent + pushed
    assert [e.sequence for e in world.envelopes()] == [1, 2]


async def test_a_live_envelope_too_large_to_push_inline_is_read_from_the_store(
    world: World,
) -> None:
    await world.start()
    await until(lambda: world.emitted == [Drained(0)])
    reads = world.store.reads
    [big] = await world.send(1, content=b"x" * (64 * 1024 + 1))
    await until(lambda: len(world.envelopes()) == 1)
    assert world.envelopes()[0].server_message_id == big
    assert world.store.reads > reads


async def test_a_live_envelope_waits_while_the_window_is_full(world: World) -> None:
    ids = await world.send(2)
    loop = await world.start(window=2)
    await until(lambda: len(world.envelopes()) == 2)
    [live] = await world.send(1)
    await settle()
    assert len(world.envelopes()) == 2
    await world.ack(loop, ids[:1])
    await until(lambda: len(world.envelopes()) == 3)
    assert world.envelopes()[2].server_message_id == live


async def test_a_stale_event_is_not_delivered_again(world: World) -> None:
    await world.send(3)
    await world.start()
    await until(lambda: world.emitted[-1:] == [Drained(3)])
    first = world.envelopes()[0]
    await world.bus.publish([InboxChanged(BOB, 1, first), InboxChanged(BOB, 3, None)])
    await settle()
    assert len(world.emitted) == 4


async def test_a_send_that_commits_after_a_higher_sequence_is_still_delivered(
    world: World,
) -> None:
    world.in_order = False
    await world.start()
    await until(lambda: world.emitted == [Drained(0)])
    world.store.hidden = frozenset({1})  # sequence 1 was drawn first but its write lands last
    late, early = await world.send(2, push=False)
    [early_envelope] = [i for i in await world.store.read(BOB, after_sequence=1, limit=1,
                                                          now=NOW) if isinstance(i, Envelope)]
    await world.bus.publish([InboxChanged(BOB, 2, early_envelope)])
    await until(lambda: len(world.envelopes()) == 1)
    assert world.envelopes()[0].server_message_id == early
    world.store.hidden = frozenset()
    await world.bus.publish([InboxChanged(BOB, 1, None)])
    await until(lambda: len(world.envelopes()) == 2)
    await settle()
    assert [e.server_message_id for e in world.envelopes()] == [early, late]
    assert [e.sequence for e in world.envelopes()] == [2, 1]


async def test_events_dropped_for_a_slow_subscriber_are_recovered_from_the_store(
    world: World,
) -> None:
    world.bus = InProcessBus(subscriber_capacity=2)
    world.deliverer = Deliverer(store=world.store, bus=world.bus)
    await world.start()
    await until(lambda: world.emitted == [Drained(0)])
    # One batch of 6 events, published without yielding: the subscription overflows.
    await world.send(6, push=False)
    await world.bus.publish([InboxChanged(BOB, n) for n in range(1, 7)])
    await until(lambda: len(world.envelopes()) == 6)
    await settle()
    assert [e.sequence for e in world.envelopes()] == [1, 2, 3, 4, 5, 6]


async def test_device_revoked_ends_run(world: World) -> None:
    await world.send(1)
    await world.start()
    await until(lambda: world.emitted[-1:] == [Drained(1)])
    await world.bus.publish([DeviceRevoked(BOB)])
    task = world.tasks[0]
    with pytest.raises(DeviceRevokedWhileConnected):
        await asyncio.wait_for(task, 2)
