"""The group size limit: 1,024 members by default, enforced all-or-nothing, and groups of
5,000 when the setting allows, built through the real AddMembers RPC."""

from __future__ import annotations

import time

import pytest

from chatconnect.groups.v1 import groups_service_pb2 as pb
from tests.conftest import Server

from .conftest import People
from .helpers import Code, GroupsCaller, limit, rejected
from .seeding import seed_accounts


async def _fill(owner: GroupsCaller, group_id: str, user_ids: list[str], batch: int) -> None:
    for start in range(0, len(user_ids), batch):
        added = await owner.add(group_id, *user_ids[start : start + batch])
        assert len(added.added) == len(user_ids[start : start + batch])
        assert list(added.not_added) == []


async def _count_members(caller: GroupsCaller, group_id: str) -> int:
    count, token = 0, ""
    while True:
        page = await caller.call(
            "ListMembers",
            pb.ListMembersRequest(group_id=group_id, page_size=1024, page_token=token),
        )
        count += len(page.members)
        token = page.next_page_token
        if not token:
            return count


async def test_the_default_limit_is_1024_and_a_full_group_changes_nothing(
    any_server: Server, people: People
) -> None:
    (owner,) = await people(1)
    others = await seed_accounts(any_server, 1025)
    gid = (await owner.create()).group.group_id
    batch = any_server.settings.groups.max_users_per_request
    await _fill(owner, gid, others[:1023], batch)
    full = await owner.get(gid)
    assert (full.member_count, full.max_members) == (1024, 1024)
    # Two more do not fit: neither is added.
    error = await rejected(owner.add(gid, *others[1023:]), Code.RESOURCE_EXHAUSTED, "GROUP_FULL")
    detail = limit(error)
    assert (detail.setting, detail.limit, detail.actual) == ("groups.max_members", 1024, 1026)
    await rejected(owner.add(gid, others[1024]), Code.RESOURCE_EXHAUSTED, "GROUP_FULL")
    after = await owner.get(gid)
    assert (after.member_count, after.revision, after.membership_version) == (
        1024,
        full.revision,
        full.membership_version,
    )
    assert await _count_members(owner, gid) == 1024


@pytest.mark.settings(groups={"max_members": 5000})
async def test_a_group_of_5000_members(any_server: Server, people: People) -> None:
    (owner,) = await people(1)
    others = await seed_accounts(any_server, 5000)
    gid = (await owner.create()).group.group_id
    started = time.monotonic()
    await _fill(owner, gid, others[:4999], any_server.settings.groups.max_users_per_request)
    elapsed = time.monotonic() - started
    group = await owner.get(gid)
    assert (group.member_count, group.max_members) == (5000, 5000)
    assert await _count_members(owner, gid) == 5000
    await rejected(owner.add(gid, others[4999]), Code.RESOURCE_EXHAUSTED, "GROUP_FULL")
    # Adding is batched per partition, not a round trip per member: generous on 2 cores.
    assert elapsed < 60, f"adding 4,999 members took {elapsed:.1f}s"
