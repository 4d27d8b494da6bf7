"""Devices and link requests; read markers and tombstones."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chatconnect.model import Conversation, DeviceAddress, DeviceKind


@dataclass(frozen=True)
class DeviceRecord:
    """A linked device as its own account sees it."""

    user_id: str
    device_id: int
    incarnation: str
    registration_id: int
    kind: DeviceKind
    encrypted_name: bytes
    created_at: float
    last_seen_at: float

    @property
    def primary(self) -> bool:
        """The device that registered the account."""
        return self.device_id == 1


@dataclass(frozen=True)
class LinkRequest:
    """A new device waiting to be approved by an existing one."""

    link_code: str
    secret_hash: bytes
    request_id: str
    ephemeral_key: bytes
    kind: DeviceKind
    expires_at: float
    approved_user_id: str | None = None
    approved_request_id: str | None = None
    provisioning: bytes | None = None
    device_id: int | None = None
    incarnation: str | None = None
    completed_request_id: str | None = None


class DeleteScope(enum.IntEnum):
    """Whose copy a deletion removes (chatconnect.devices.v1.DeleteScope). A higher scope
    covers a lower one: FOR_EVERYONE wins when both reach one message."""

    UNSPECIFIED = 0
    FOR_ME = 1
    FOR_EVERYONE = 2


@dataclass(frozen=True)
class ReadMarker:
    """Everything in `conversation` up to (read_through_time, read_through_server_message_id)
    is read. Markers are ordered by that pair and only ever move forward."""

    conversation: Conversation
    read_through_time: float
    read_through_server_message_id: str

    @property
    def position(self) -> tuple[float, str]:
        """The order markers merge by: server time, then server message id for ties."""
        return (self.read_through_time, self.read_through_server_message_id)


@dataclass(frozen=True)
class Tombstone:
    """A message deleted for one account's devices, kept until `expires_at` so that a late
    sync cannot bring the message back. One per (account, conversation, message)."""

    user_id: str
    """The account whose devices apply it."""
    conversation: Conversation
    """The conversation as that account sees it (1:1: the other user)."""
    server_message_id: str
    scope: DeleteScope
    delete_time: float
    deleted_by: DeviceAddress
    expires_at: float

    @property
    def cursor(self) -> TombstoneCursor:
        """Where a listing that ended at this tombstone continues."""
        return TombstoneCursor(
            self.delete_time, conversation_key(self.conversation), self.server_message_id
        )


@dataclass(frozen=True, order=True)
class TombstoneCursor:
    """A position in an account's tombstones, which are listed oldest first."""

    delete_time: float
    conversation_key: str
    server_message_id: str


def conversation_key(conversation: Conversation) -> str:
    """The stored, ordered form of a conversation: "u:<user id>" or "g:<group id>"."""
    if conversation.group_id:
        return f"g:{conversation.group_id}"
    return f"u:{conversation.user_id}"


def conversation_from_key(key: str) -> Conversation:
    """The conversation of a stored key (see `conversation_key`)."""
    kind, _, ident = key.partition(":")
    return Conversation(group_id=ident) if kind == "g" else Conversation(user_id=ident)
