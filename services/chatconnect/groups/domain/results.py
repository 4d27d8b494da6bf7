"""What the mutating calls return, and the codec that stores a result with its request
so that a retry with the same request_id gets the first answer back unchanged."""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from chatconnect.groups.domain.models import (
    Ban,
    GroupRecord,
    GroupRole,
    JoinRequest,
    Member,
)


class AddFailureReason(enum.IntEnum):
    """Why a user was not added (chatconnect.groups.v1.AddMemberFailureReason)."""

    UNSPECIFIED = 0
    USER_NOT_FOUND = 1
    PRIVACY_RESTRICTED = 2
    BANNED = 3
    TOO_MANY_GROUPS = 4


class JoinOutcome(enum.IntEnum):
    """How a join with an invite link turned out (chatconnect.groups.v1.JoinOutcome)."""

    UNSPECIFIED = 0
    JOINED = 1
    REQUESTED = 2
    ALREADY_MEMBER = 3


@dataclass(frozen=True)
class AddFailure:
    """A user that was not added, and why."""

    user_id: str
    reason: AddFailureReason


@dataclass(frozen=True)
class GroupView:
    """A group as one member sees it."""

    record: GroupRecord
    caller_role: GroupRole
    max_members: int


@dataclass(frozen=True)
class GroupResult:
    """The group after a change (UpdateGroupInfo, UpdateGroupSettings)."""

    group: GroupView


@dataclass(frozen=True)
class AddResult:
    """CreateGroup, AddMembers and ApproveJoinRequests."""

    group: GroupView
    added: tuple[Member, ...] = ()
    not_added: tuple[AddFailure, ...] = ()


@dataclass(frozen=True)
class RemoveResult:
    """RemoveMembers."""

    group: GroupView
    removed: tuple[str, ...]


@dataclass(frozen=True)
class LeaveResult:
    """LeaveGroup."""

    membership_version: int
    revision: int
    group_deleted: bool


@dataclass(frozen=True)
class RoleResult:
    """UpdateMemberRole."""

    group: GroupView
    member: Member


@dataclass(frozen=True)
class BanResult:
    """BanMembers."""

    group: GroupView
    banned: tuple[Ban, ...]


@dataclass(frozen=True)
class UnbanResult:
    """UnbanMembers."""

    group: GroupView
    unbanned: tuple[str, ...]


@dataclass(frozen=True)
class InviteResult:
    """CreateInviteLink (the link) and RevokeInviteLink (no link)."""

    revision: int
    link_code: str = ""
    link_created_by: str = ""
    link_created_at: float = 0.0
    link_expires_at: float = 0.0


@dataclass(frozen=True)
class JoinResult:
    """JoinGroupByInviteLink."""

    outcome: JoinOutcome
    group: GroupView | None = None
    join_request: JoinRequest | None = None


@dataclass(frozen=True)
class DenyResult:
    """DenyJoinRequests."""

    denied: tuple[str, ...]


R = TypeVar("R")


def encode(result: object) -> str:
    """`result` (a dataclass of the types above) as JSON text."""
    return json.dumps(_plain(result), separators=(",", ":"), sort_keys=True)


def decode(kind: type[R], text: str) -> R:
    """The result `encode` turned into `text`."""
    return typing.cast(R, _build(kind, json.loads(text)))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.IntEnum):
        return int(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _build(kind: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return _build(inner[0], data)
    if origin is tuple:
        return tuple(_build(typing.get_args(kind)[0], v) for v in data)
    if origin is dict:
        _, value_type = typing.get_args(kind)
        return {k: _build(value_type, v) for k, v in data.items()}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{name: _build(hints[name], v) for name, v in data.items()})
    if kind is bytes:
        return base64.b64decode(data)
    if isinstance(kind, type) and issubclass(kind, enum.IntEnum):
        return kind(data)
    if kind is float:
        return float(data)
    return data
