"""Acknowledging on ScyllaDB reads the receipt fields from the id lookup; rows written
before schema version 3 lack them and are read from the inbox instead."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from chatconnect.router.domain.models import Acknowledged
from chatconnect.router.scylla import ScyllaMessageStore
from chatconnect.router.sequences import SequenceAllocator
from chatconnect.storage.cql import CqlSession
from tests.router.test_store_contract import ALICE, BOB, pending, read_all
from tests.servers import redis_url


async def test_an_id_lookup_row_from_before_version_3_is_acknowledged_from_the_inbox(
    cql: CqlSession,
) -> None:
    redis = aioredis.Redis.from_url(redis_url())
    try:
        sequences = SequenceAllocator(redis, cql, block=1000, namespace=uuid.uuid4().hex[:8])
        store = ScyllaMessageStore(cql, sequences, gap_grace_seconds=3600)
        old, _ = await store.commit(pending((BOB,)))
        new, _ = await store.commit(pending((BOB,)))
        inbox = {e.server_message_id: e for e in await read_all(store, BOB)}
        # What a server before schema version 3 wrote: an id lookup without receipt fields.
        await cql.execute(
            "forget_fields",
            "UPDATE inbox_by_message SET type = null, sender_user_id = null, "
            "sender_device_id = null, destination_group_id = null, server_time = null "
            "WHERE user_id = ? AND device_id = ? AND server_message_id = ?",
            (BOB.user_id, BOB.device_id, old.server_message_id),
        )
        removed = await store.acknowledge(BOB, [new.server_message_id, old.server_message_id])
        assert removed == [
            Acknowledged.of(inbox[old.server_message_id]),
            Acknowledged.of(inbox[new.server_message_id]),
        ]
        assert removed[0].sender == ALICE
        assert await read_all(store, BOB) == []
    finally:
        await redis.aclose()
