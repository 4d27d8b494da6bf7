"""The contract of the GroupLog port (group message records and large groups' logs), and of
the ReceiptTally port, each run against every adapter."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from chatconnect.model import Conversation, DeviceAddress, Envelope, EnvelopeType, ReceiptType
from chatconnect.router.domain.models import GroupMessage
from chatconnect.router.group_log_embedded import SqliteGroupLog
from chatconnect.router.group_log_scylla import ScyllaGroupLog
from chatconnect.router.ports import GroupLog, ReceiptTally
from chatconnect.router.tally_inprocess import InProcessReceiptTally
from chatconnect.router.tally_redis import RedisReceiptTally
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from tests.scylla import empty_keyspace
from tests.servers import redis_url

NOW = 1_700_000_000.0
RETENTION = 3600.0
ANN = DeviceAddress("ann", 1)


@asynccontextmanager
async def _embedded(request: pytest.FixtureRequest) -> AsyncIterator[GroupLog]:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    db = await Database.open(tmp_path / "db.sqlite", migrations=MIGRATIONS, synchronous="NORMAL")
    try:
        yield SqliteGroupLog(db)
    finally:
        await db.close()


@asynccontextmanager
async def _scylla(request: pytest.FixtureRequest) -> AsyncIterator[GroupLog]:
    async with empty_keyspace(request.getfixturevalue("scylla_keyspace")) as cql:
        yield ScyllaGroupLog(cql)


@pytest.fixture(params=["embedded", "scylla"])
async def log(request: pytest.FixtureRequest) -> AsyncIterator[GroupLog]:
    factory = _embedded if request.param == "embedded" else _scylla
    async with factory(request) as adapter:
        yield adapter


@pytest.fixture(params=["inprocess", "redis"])
async def tally(request: pytest.FixtureRequest) -> AsyncIterator[ReceiptTally]:
    if request.param == "inprocess":
        yield InProcessReceiptTally()
        return
    client = aioredis.Redis.from_url(redis_url())
    try:
        yield RedisReceiptTally(client, retention_seconds=60, namespace=f"t{uuid.uuid4().hex}")
    finally:
        await client.aclose()


def _group() -> str:
    return str(uuid.uuid4())


def _entry(
    group_id: str, text: str, *, at: float = NOW, expires: float = NOW + RETENTION
) -> Envelope:
    return Envelope(
        server_message_id=uuid.uuid4().hex,
        sequence=0,
        type=EnvelopeType.SENDER_KEY_CIPHERTEXT,
        sender=ANN,
        client_message_id=f"c-{text}",
        destination=Conversation(group_id=group_id),
        content=text.encode(),
        server_time=at,
        expire_time=expires,
    )


async def test_appends_get_increasing_positions_and_read_back_in_order(log: GroupLog) -> None:
    group = _group()
    entries = [_entry(group, f"m{i}") for i in range(5)]
    positions = [await log.append(group, e) for e in entries]
    assert positions == sorted(positions) and len(set(positions)) == 5
    read = await log.read(group, after_position=0, limit=10, now=NOW)
    assert [e.content for e in read] == [f"m{i}".encode() for i in range(5)]
    assert [e.group_log_position for e in read] == positions
    assert all(e.sequence == 0 for e in read)
    assert await log.head(group) == positions[-1]
    tail = await log.read(group, after_position=positions[2], limit=10, now=NOW)
    assert [e.content for e in tail] == [b"m3", b"m4"]
    assert await log.read(group, after_position=0, limit=2, now=NOW) == read[:2]


async def test_appending_the_same_message_again_returns_its_position(log: GroupLog) -> None:
    group = _group()
    entry = _entry(group, "once")
    first = await log.append(group, entry)
    assert await log.append(group, entry) == first
    assert len(await log.read(group, after_position=0, limit=10, now=NOW)) == 1


async def test_concurrent_appends_never_share_or_hide_a_position(log: GroupLog) -> None:
    group = _group()
    entries = [_entry(group, f"c{i}") for i in range(12)]
    positions = await asyncio.gather(*(log.append(group, e) for e in entries))
    assert sorted(positions) == list(range(1, 13))
    read = await log.read(group, after_position=0, limit=50, now=NOW)
    assert [e.group_log_position for e in read] == list(range(1, 13))
    assert {e.server_message_id for e in read} == {e.server_message_id for e in entries}


async def test_logs_of_two_groups_are_separate(log: GroupLog) -> None:
    one, two = _group(), _group()
    await log.append(one, _entry(one, "a"))
    assert await log.read(two, after_position=0, limit=10, now=NOW) == []
    assert await log.head(two) == 0


async def test_expired_entries_are_never_read(log: GroupLog) -> None:
    group = _group()
    await log.append(group, _entry(group, "old", expires=NOW + 10))
    await log.append(group, _entry(group, "new", expires=NOW + 1000))
    read = await log.read(group, after_position=0, limit=10, now=NOW + 20)
    assert [e.content for e in read] == [b"new"]


async def test_a_recorded_message_is_found(log: GroupLog) -> None:
    group = _group()
    message = GroupMessage(group, uuid.uuid4().hex, ANN, NOW, NOW + RETENTION, 999)
    await log.record(message)
    await log.record(message)
    assert await log.find(group, message.server_message_id) == message
    assert await log.find(group, "unknown") is None


def _message(group: str, at: float, sender: str = "ann") -> GroupMessage:
    return GroupMessage(group, uuid.uuid4().hex, DeviceAddress(sender, 1), at, at + 100, 10)


async def test_tally_counts_members_whose_watermark_reaches_the_message(
    tally: ReceiptTally,
) -> None:
    group = _group()
    early, late = _message(group, NOW), _message(group, NOW + 10)
    await tally.advance(group, ReceiptType.READ, "ben", NOW + 10)
    await tally.advance(group, ReceiptType.READ, "cat", NOW)
    await tally.advance(group, ReceiptType.DELIVERED, "ben", NOW + 10)
    await tally.advance(group, ReceiptType.DELIVERED, "cat", NOW + 10)
    await tally.advance(group, ReceiptType.DELIVERED, "dan", NOW + 10)
    assert (await tally.counts(early)).read == 2
    assert (await tally.counts(late)).read == 1
    assert (await tally.counts(late)).delivered == 3


async def test_tally_watermarks_never_move_back_and_exclude_the_sender(
    tally: ReceiptTally,
) -> None:
    group = _group()
    message = _message(group, NOW + 5)
    await tally.advance(group, ReceiptType.READ, "ben", NOW + 10)
    await tally.advance(group, ReceiptType.READ, "ben", NOW)  # a late, older receipt
    await tally.advance(group, ReceiptType.READ, "ann", NOW + 10)  # the sender's own device
    assert (await tally.counts(message)).read == 1


async def test_tally_counts_every_one_of_many_concurrent_acknowledgements(
    tally: ReceiptTally,
) -> None:
    # A large group's members acknowledge together (written together on Redis); the
    # same member twice in one batch keeps the newer watermark.
    group = _group()
    early, late = _message(group, NOW), _message(group, NOW + 10)
    members = [f"member-{i}" for i in range(300)]
    await asyncio.gather(
        *(tally.advance(group, ReceiptType.DELIVERED, m, NOW + 10) for m in members),
        tally.advance(group, ReceiptType.DELIVERED, "member-0", NOW),
        *(tally.advance(group, ReceiptType.READ, m, NOW) for m in members[:100]),
    )
    assert (await tally.counts(late)).delivered == 300
    assert (await tally.counts(early)).read == 100
    assert (await tally.counts(late)).read == 0


async def test_tally_counts_plays_per_message(tally: ReceiptTally) -> None:
    group = _group()
    voice, other = _message(group, NOW), _message(group, NOW)
    await tally.mark_played(group, voice.server_message_id, "ben")
    await tally.mark_played(group, voice.server_message_id, "ben")
    await tally.mark_played(group, voice.server_message_id, "cat")
    counts = await tally.counts(voice)
    assert (counts.played, (await tally.counts(other)).played) == (2, 0)
