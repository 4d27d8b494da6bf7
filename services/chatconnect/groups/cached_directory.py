"""Group memberships for the services that enforce them, re-read only after a change.

A send to a 1,000-member group checks the whole membership, and reading it costs a row
per member. Every change to a group (members, roles, settings) bumps its revision in the
same atomic commit, so a membership read at one revision is exact for as long as the
group stays at that revision. Each use still reads the group's row (one row) to learn its
revision: a removal takes effect at the very next send, in every process.
"""

from __future__ import annotations

from collections import OrderedDict

from chatconnect.groups.domain.models import GroupMembership
from chatconnect.groups.ports import GroupDirectory, GroupStore


class CachedGroupDirectory(GroupDirectory):
    """`store`'s memberships, the `capacity` most recently used kept while unchanged."""

    def __init__(self, store: GroupStore, *, capacity: int) -> None:
        self._store = store
        self._capacity = capacity
        self._memberships: OrderedDict[str, tuple[int, GroupMembership]] = OrderedDict()

    def __len__(self) -> int:
        """How many memberships are kept."""
        return len(self._memberships)

    async def membership_version(self, group_id: str) -> int | None:
        return await self._store.membership_version(group_id)

    async def membership(self, group_id: str) -> GroupMembership | None:
        record = await self._store.record(group_id)
        if record is None:
            self._memberships.pop(group_id, None)
            return None
        kept = self._memberships.get(group_id)
        if kept is not None and kept[0] == record.revision:
            self._memberships.move_to_end(group_id)
            return kept[1]
        membership = await self._store.membership(group_id)
        if membership is None or self._capacity == 0:
            return membership
        # Read after the record: at this revision or a later one, never an earlier one,
        # and revisions only grow, so it is never returned for a revision it predates.
        self._memberships[group_id] = (record.revision, membership)
        self._memberships.move_to_end(group_id)
        while len(self._memberships) > self._capacity:
            self._memberships.popitem(last=False)
        return membership
