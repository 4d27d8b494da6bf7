"""Accounts in bulk for the group size tests.

Registering thousands of accounts through gRPC (verification, keys, tokens) would take
minutes, and those accounts only need to exist to be added to a group, so they are
seeded into the running server's own database: through the users service's AccountStore
port on the embedded store, and with the rows its ScyllaDB registration writes on the
distributed one (as tests/devices/backends.py seeds)."""

from __future__ import annotations

import asyncio
import itertools
import uuid

from chatconnect.storage.cql import CqlSession
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from chatconnect.users.domain.models import Verification
from chatconnect.users.embedded import SqliteAccountStore
from tests.conftest import Server
from tests.devices.backends import NOW, primary_device, seed_scylla_account

_numbers = itertools.count()


async def seed_accounts(server: Server, count: int) -> list[str]:
    """`count` new accounts (each with a primary device) in `server`'s store."""
    user_ids = [uuid.uuid4().hex for _ in range(count)]
    settings = server.settings
    if settings.server.store == "scylla":
        cql = await CqlSession.connect(settings.scylla, timeout=10.0)
        try:
            await asyncio.gather(*(seed_scylla_account(cql, u) for u in user_ids))
        finally:
            await cql.close()
        return user_ids
    db = await Database.open(
        settings.server.data_dir / "chatconnect.db", migrations=MIGRATIONS, synchronous="NORMAL"
    )
    try:
        accounts = SqliteAccountStore(db)
        for user_id in user_ids:
            await accounts.register(
                verification=Verification(
                    verification_id=uuid.uuid4().hex,
                    phone_number=f"+4479{next(_numbers):08d}",
                    request_id=uuid.uuid4().hex,
                    code_hash=b"",
                    expires_at=NOW + 600,
                ),
                request_id=uuid.uuid4().hex,
                new_user_id=user_id,
                primary=primary_device(user_id),
                now=NOW,
            )
    finally:
        await db.close()
    return user_ids
