"""The GroupStore contract, on every adapter: membership reads right after a change,
commits fenced by revision, concurrent adds racing for the last seats, recorded answers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from chatconnect.bus.inprocess import InProcessRateLimiter
from chatconnect.groups.cached_directory import CachedGroupDirectory
from chatconnect.groups.config import GroupsConfig
from chatconnect.groups.domain.admin import GroupAdmin
from chatconnect.groups.domain.errors import GroupFull
from chatconnect.groups.domain.models import (
    GroupChange,
    GroupInfo,
    GroupRecord,
    GroupRole,
    GroupSettings,
    Member,
    RequestRecord,
)
from chatconnect.groups.domain.mutations import Mutations, next_record
from chatconnect.groups.domain.screening import Screening
from chatconnect.groups.embedded import SqliteGroupStore
from chatconnect.groups.ports import GroupStore
from chatconnect.groups.scylla import ScyllaGroupStore
from chatconnect.storage.cql import CqlSession
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from chatconnect.users.domain.models import Verification
from chatconnect.users.embedded import SqliteAccountStore
from tests.devices.backends import NOW, prepare_adapter, primary_device, seed_scylla_account


@dataclass(frozen=True)
class Backend:
    """A group store and a way to seed accounts on the same database."""

    store: GroupStore
    seed: Callable[[str], Awaitable[None]]


@pytest.fixture(params=["embedded", "scylla"])
def group_adapter(request: pytest.FixtureRequest) -> str:
    return prepare_adapter(request)


@pytest.fixture
async def backend(
    group_adapter: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    if group_adapter == "scylla":
        cql: CqlSession = request.getfixturevalue("cql")
        yield Backend(ScyllaGroupStore(cql), lambda u: seed_scylla_account(cql, u))
        return
    db = await Database.open(tmp_path / "db.sqlite", migrations=MIGRATIONS, synchronous="NORMAL")
    accounts = SqliteAccountStore(db)

    async def seed(user_id: str) -> None:
        await accounts.register(
            verification=Verification(
                uuid.uuid4().hex, f"+4478{uuid.uuid4().int % 10**8:08d}", "r", b"", NOW + 600
            ),
            request_id=uuid.uuid4().hex,
            new_user_id=user_id,
            primary=primary_device(user_id),
            now=NOW,
        )

    try:
        yield Backend(SqliteGroupStore(db), seed)
    finally:
        await db.close()


def _new_group(owner: str, *members: str) -> GroupChange:
    group_id = str(uuid.uuid4())
    record = GroupRecord(
        group_id, owner, NOW, NOW, GroupInfo(b"t"), GroupSettings(), 1, 1, 1 + len(members)
    )
    put = (
        Member(owner, GroupRole.OWNER, "", NOW),
        *(Member(u, GroupRole.MEMBER, owner, NOW) for u in members),
    )
    return GroupChange(0, record, put_members=put)


def _deletion(record: GroupRecord, at: float, *members: str) -> GroupChange:
    """The change that deletes the group at `record` and its remaining `members`."""
    after = next_record(record, at, members_changed=True, member_count=0)
    return GroupChange(record.revision, after, delete_group=True, drop_members=members)


def _answer(user_id: str, method: str = "AddMembers") -> RequestRecord:
    # Expires an hour from the wall clock, not from the tests' fixed NOW: Cassandra keeps
    # the row for a TTL counted on the real clock, so an expiry in the past is gone in 1 s.
    return RequestRecord(user_id, uuid.uuid4().hex, method, '{"x":1}', time.time() + 3600)


async def test_membership_reflects_a_change_as_soon_as_it_is_committed(backend: Backend) -> None:
    store = backend.store
    created = _new_group("alice", "bob")
    assert await store.commit(created)
    gid = created.record.group_id
    assert await store.membership_version(gid) == 1
    membership = await store.membership(gid)
    assert membership is not None
    assert membership.roles == {"alice": GroupRole.OWNER, "bob": GroupRole.MEMBER}

    add = GroupChange(
        1,
        next_record(created.record, NOW + 1, members_changed=True, member_count=3),
        put_members=(Member("carol", GroupRole.MEMBER, "alice", NOW + 1),),
        request=_answer("alice"),
    )
    assert await store.commit(add)
    assert await store.membership_version(gid) == 2
    membership = await store.membership(gid)
    assert membership is not None and membership.member_ids == ["alice", "bob", "carol"]

    remove = GroupChange(
        2,
        next_record(add.record, NOW + 2, members_changed=True, member_count=2),
        drop_members=("bob",),
    )
    assert await store.commit(remove)
    membership = await store.membership(gid)
    assert membership is not None and membership.membership_version == 3
    assert "bob" not in membership.roles and await store.member(gid, "bob") is None
    assert await store.group_counts(["alice", "bob", "carol"]) == {"alice": 1, "bob": 0, "carol": 1}
    assert [r.group_id for r, _ in await store.groups_of("carol")] == [gid]
    assert await store.groups_of("bob") == []
    assert add.request is not None
    request_id, expires_at = add.request.request_id, add.request.expires_at
    assert await store.request("alice", request_id, now=NOW) == add.request
    assert await store.request("alice", request_id, now=expires_at + 1) is None


async def test_a_commit_applies_only_at_its_base_revision(backend: Backend) -> None:
    store = backend.store
    created = _new_group("alice")
    assert await store.commit(created)
    assert not await store.commit(created)  # the id is taken
    gid = created.record.group_id
    changes = [
        GroupChange(
            1,
            next_record(created.record, NOW + 1, members_changed=True, member_count=2),
            put_members=(Member(user, GroupRole.MEMBER, "alice", NOW + 1),),
        )
        for user in ("bob", "carol", "dave")
    ]
    applied = await asyncio.gather(*(store.commit(c) for c in changes))
    assert sorted(applied) == [False, False, True]
    state = await store.state(gid)
    assert state is not None and len(state.members) == 2 and state.record.revision == 2


async def test_deleting_a_group_removes_it_for_every_reader(backend: Backend) -> None:
    store = backend.store
    created = _new_group("alice")
    assert await store.commit(created)
    gid = created.record.group_id
    gone = _deletion(created.record, NOW + 1, "alice")
    assert await store.commit(gone)
    assert await store.membership(gid) is None
    assert await store.membership_version(gid) is None
    assert await store.state(gid) is None and await store.record(gid) is None
    assert await store.groups_of("alice") == []


async def test_the_cached_directory_sees_every_kind_of_change_at_once(backend: Backend) -> None:
    # The send path reads memberships through the cache; a change of members, roles or
    # settings (a role or setting leaves the membership version alone) must show at once.
    store = backend.store
    directory = CachedGroupDirectory(store, capacity=8)
    created = _new_group("alice", "bob")
    assert await store.commit(created)
    gid = created.record.group_id
    first = await directory.membership(gid)
    assert first is not None and first == await store.membership(gid)
    assert await directory.membership(gid) is first  # unchanged: not read again

    promote = GroupChange(
        1,
        next_record(created.record, NOW + 1),
        put_members=(Member("bob", GroupRole.ADMIN, "alice", NOW),),
    )
    assert await store.commit(promote)
    promoted = await directory.membership(gid)
    assert promoted is not None and promoted.roles["bob"] == GroupRole.ADMIN
    assert promoted.membership_version == first.membership_version

    strict = GroupChange(
        2, next_record(promote.record, NOW + 2, settings=GroupSettings(only_admins_send=True))
    )
    assert await store.commit(strict)
    restricted = await directory.membership(gid)
    assert restricted is not None and restricted.settings.only_admins_send

    remove = GroupChange(
        3,
        next_record(strict.record, NOW + 3, members_changed=True, member_count=1),
        drop_members=("bob",),
    )
    assert await store.commit(remove)
    removed = await directory.membership(gid)
    assert removed is not None and removed.role_of("bob") is None

    gone = _deletion(remove.record, NOW + 4, "alice")
    assert await store.commit(gone)
    assert await directory.membership(gid) is None


async def test_the_cached_directory_keeps_only_its_capacity(backend: Backend) -> None:
    store = backend.store
    groups = [_new_group("alice", f"member-{i}") for i in range(3)]
    for change in groups:
        assert await store.commit(change)
    for capacity in (0, 1):
        directory = CachedGroupDirectory(store, capacity=capacity)
        for change in [*groups, *groups]:
            membership = await directory.membership(change.record.group_id)
            assert membership == await store.membership(change.record.group_id)
        assert len(directory) == capacity


async def test_concurrent_adds_never_overfill_the_group(backend: Backend) -> None:
    users = [f"user-{i}" for i in range(6)]
    for user in ["owner", *users]:
        await backend.seed(user)
    config = GroupsConfig(max_members=4)
    mutations = Mutations(store=backend.store, config=config, clock=lambda: NOW)
    admin = GroupAdmin(
        mutations=mutations,
        screening=Screening(store=backend.store, privacy=None, config=config),
        limiter=InProcessRateLimiter(),
    )
    created = await admin.create(
        "owner", request_id="c", info=GroupInfo(b"t"), settings=GroupSettings(), member_ids=[]
    )
    gid = created.group.record.group_id

    async def add(user: str) -> bool:
        try:
            await admin.add_members(
                "owner", request_id=f"add-{user}", group_id=gid, user_ids=[user]
            )
        except GroupFull:
            return False
        return True

    # Six racers for three free seats; every round trip may interleave with the others.
    won = await asyncio.gather(*(add(u) for u in users))
    assert sum(won) == 3
    membership = await backend.store.membership(gid)
    assert membership is not None and len(membership.roles) == 4
    state = await backend.store.state(gid)
    assert state is not None and state.record.member_count == 4
    assert state.record.membership_version == 4


# Only ScyllaDB: the embedded store commits a change in one transaction.
@pytest.mark.parametrize("group_adapter", ["scylla"], indirect=True)
async def test_scylla_finishes_a_change_interrupted_after_its_fence(
    backend: Backend, group_adapter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backend.store
    assert isinstance(store, ScyllaGroupStore)
    created = _new_group("alice", "bob")
    assert await store.commit(created)
    gid = created.record.group_id
    remove = GroupChange(
        1,
        next_record(created.record, NOW + 1, members_changed=True, member_count=1),
        drop_members=("bob",),
        request=_answer("alice", "RemoveMembers"),
    )
    finish = ScyllaGroupStore._finish

    async def crash(self: ScyllaGroupStore, change: GroupChange, stamp: int) -> None:
        raise ConnectionError("the process died after the fence")

    monkeypatch.setattr(ScyllaGroupStore, "_finish", crash)
    with pytest.raises(ConnectionError):
        await store.commit(remove)
    monkeypatch.setattr(ScyllaGroupStore, "_finish", finish)
    # Bob's row is still there, but the send path already leaves him out.
    membership = await store.membership(gid)
    assert membership is not None and membership.roles == {"alice": GroupRole.OWNER}
    assert membership.membership_version == 2
    assert await store.member(gid, "bob") is None
    # The next writer (or reader of the state) finishes the change, answer included.
    state = await store.state(gid)
    assert state is not None and set(state.members) == {"alice"}
    assert remove.request is not None
    assert await store.request("alice", remove.request.request_id, now=NOW) == remove.request
    assert await store.groups_of("bob") == []
    follow_up = replace(remove, base_revision=2, record=next_record(remove.record, NOW + 2))
    assert await store.commit(follow_up)
