"""How every mutating call runs: idempotent by request_id, and optimistic.

A call reads the group, decides (with the rules of its operation) what changes and what
it answers, and commits the change only if the group is still at the revision it read;
when another change got in first it reads again and decides again, so limits (members,
bans, join requests) and permissions always hold for the state they were checked on. The
answer is committed with the change, so a retry with the same request_id gets it back
and changes nothing.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from chatconnect.groups.config import GroupsConfig
from chatconnect.groups.domain.checks import check_group_id
from chatconnect.groups.domain.errors import GroupBusy, GroupNotFound
from chatconnect.groups.domain.models import (
    GroupChange,
    GroupRecord,
    GroupRole,
    GroupState,
    RequestRecord,
)
from chatconnect.groups.domain.results import GroupView, decode, encode
from chatconnect.groups.ports import GroupStore
from chatconnect.model import Clock
from chatconnect.runtime.errors import FieldInvalid
from chatconnect.users.domain.registration import check_request_id

R = TypeVar("R")

Decision = tuple[GroupChange | None, R]
"""A change to commit (None: nothing changes) and the call's answer."""

Plan = Callable[[GroupState, float], Awaitable[Decision[R]]]
"""Decides a call's change and answer from the group's state at a time."""

MAX_ATTEMPTS = 8
"""Attempts before a call gives up on a group that changes under every one of them."""

_GROUP_IDS = uuid.UUID("5d0c5b0a-6f5e-4e43-9a77-2f1c9c6f3a10")


def group_id_for(user_id: str, request_id: str) -> str:
    """The id of the group a CreateGroup request makes: derived from the request, so a
    retry can never make a second group."""
    return str(uuid.uuid5(_GROUP_IDS, f"{user_id}\n{request_id}"))


def next_record(
    record: GroupRecord, now: float, *, members_changed: bool = False, **fields: object
) -> GroupRecord:
    """`record` after one change: a new revision (and membership version when the set of
    members changes), with `fields` replaced."""
    return dataclasses.replace(
        record,
        revision=record.revision + 1,
        membership_version=record.membership_version + (1 if members_changed else 0),
        updated_at=max(now, record.updated_at),
        **fields,  # type: ignore[arg-type]
    )


class Mutations:
    """Runs mutating calls against the store."""

    def __init__(self, *, store: GroupStore, config: GroupsConfig, clock: Clock) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    def view(self, record: GroupRecord, role: GroupRole) -> GroupView:
        """`record` as a member with `role` sees it."""
        return GroupView(record=record, caller_role=role, max_members=self.config.max_members)

    def _record(self, caller: str, request_id: str, method: str, answer: object) -> RequestRecord:
        expires_at = self.clock() + self.config.request_id_ttl_seconds
        return RequestRecord(caller, request_id, method, encode(answer), expires_at)

    async def load(self, group_id: str) -> GroupState:
        """The group's state, for reads; GroupNotFound when there is no such group."""
        check_group_id(group_id)
        state = await self.store.state(group_id)
        if state is None:
            raise GroupNotFound(f"no group {group_id}")
        return state

    async def replay(self, caller: str, request_id: str, method: str, kind: type[R]) -> R | None:
        """The recorded answer to the caller's earlier request with this id, if any."""
        check_request_id(request_id)
        recorded = await self.store.request(caller, request_id, now=self.clock())
        if recorded is None:
            return None
        if recorded.method != method:
            raise FieldInvalid(
                "request_id", f"already used for {recorded.method}; use a new request_id"
            )
        return decode(kind, recorded.result)

    async def run(
        self,
        *,
        caller: str,
        request_id: str,
        method: str,
        kind: type[R],
        group_id: str,
        plan: Plan[R],
    ) -> R:
        """Applies the change `plan` decides to group `group_id`, once per request id."""
        check_request_id(request_id)
        check_group_id(group_id)
        for attempt in range(MAX_ATTEMPTS):
            # Read the group first: a store that finishes interrupted changes on read has
            # then also recorded their answers, so the replay below finds them.
            state = await self.store.state(group_id)
            if attempt == 0:
                replayed = await self.replay(caller, request_id, method, kind)
                if replayed is not None:
                    return replayed
            if state is None:
                raise GroupNotFound(f"no group {group_id}")
            change, answer = await plan(state, self.clock())
            if change is None:
                return answer
            recorded = dataclasses.replace(
                change, request=self._record(caller, request_id, method, answer)
            )
            if await self.store.commit(recorded):
                return answer
        raise GroupBusy(f"group {group_id} kept changing; retry")

    async def create(
        self,
        *,
        caller: str,
        request_id: str,
        method: str,
        kind: type[R],
        change: GroupChange,
        answer: R,
    ) -> R:
        """Commits the creation of a group, once per request id."""
        recorded = dataclasses.replace(
            change, request=self._record(caller, request_id, method, answer)
        )
        if await self.store.commit(recorded):
            return answer
        # The group exists: an earlier attempt of this very request made it (the id is
        # derived from the request). Reading it finishes that attempt's change.
        await self.store.state(change.record.group_id)
        replayed = await self.replay(caller, request_id, method, kind)
        if replayed is None:
            raise GroupBusy("the group is still being created; retry")
        return replayed
