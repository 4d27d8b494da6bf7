"""Checks shared by read markers and deletions."""

from __future__ import annotations

from chatconnect.devices.config import DevicesConfig
from chatconnect.model import Conversation
from chatconnect.runtime.errors import FieldInvalid, FieldMissing


def check_id(value: str, name: str, config: DevicesConfig) -> None:
    """A user, group or server message id: present and not too long."""
    if not value:
        raise FieldMissing(name)
    if len(value) > config.max_id_length:
        raise FieldInvalid(
            name, f"longer than {config.max_id_length} characters (devices.max_id_length)"
        )


def check_conversation(conversation: Conversation, name: str, config: DevicesConfig) -> None:
    """A conversation with its user or group id set."""
    if not conversation.user_id and not conversation.group_id:
        raise FieldMissing(name)
    check_id(conversation.group_id or conversation.user_id, name, config)
