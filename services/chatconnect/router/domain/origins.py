"""Where a message came from: what a delete for everyone is checked against.

The router records one `MessageOrigin` per accepted client send, in the send's own commit,
keyed by server message id and kept for the message retention. The devices service reads it
(port `chatconnect.devices.ports.MessageOrigins`) to learn a message's sender, conversation
and server time without reading anyone's inbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.model import Conversation, DeviceAddress
from chatconnect.router.domain.models import PendingSend


@dataclass(frozen=True)
class MessageOrigin:
    """One accepted client message: who sent it, to which conversation, and when."""

    server_message_id: str
    sender: DeviceAddress
    destination: Conversation
    """As the sender addressed it: the recipient user (1:1) or the group."""
    server_time: float
    expire_time: float

    def conversation_of(self, user_id: str) -> Conversation | None:
        """The conversation as `user_id` sees it, or None when `user_id` is not one of the
        two users of a 1:1 message. (Group membership is the groups service's to judge.)"""
        if self.destination.group_id:
            return self.destination
        if user_id == self.sender.user_id:
            return self.destination
        if user_id == self.destination.user_id:
            return Conversation(user_id=self.sender.user_id)
        return None


def origin_of(send: PendingSend) -> MessageOrigin | None:
    """The origin to record for a client send (None for server-generated envelopes, which
    nobody deletes)."""
    if send.sender is None:
        return None
    destination = send.destination or (
        send.deliveries[0].envelope.destination if send.deliveries else None
    )
    if destination is None:
        return None
    return MessageOrigin(
        server_message_id=send.server_message_id,
        sender=send.sender,
        destination=destination,
        server_time=send.server_time,
        expire_time=send.expire_time,
    )
