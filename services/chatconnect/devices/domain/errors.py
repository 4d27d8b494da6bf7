"""Errors of the devices service."""

from __future__ import annotations

from chatconnect.runtime.errors import ChatConnectError, LimitExceeded


class LinkCodeNotFound(ChatConnectError):
    """No pending link has this code."""


class LinkNotFound(ChatConnectError):
    """No pending link has this secret."""


class LinkCodeExpired(ChatConnectError):
    """The link code is too old; show a new QR code."""


class LinkAlreadyApproved(ChatConnectError):
    """Another approval already used this link code."""


class LinkNotApproved(ChatConnectError):
    """The link was not approved before the wait ended; call CompleteLink again."""


class DeviceLimitReached(LimitExceeded):
    """The account already has devices.max_linked_devices linked devices."""


class NotPrimaryDevice(ChatConnectError):
    """Only the primary device may unlink other devices."""


class TooManyMarkers(LimitExceeded):
    """An UpdateReadMarkers request carries more than devices.max_markers_per_request."""


class TooManyMessages(LimitExceeded):
    """A DeleteMessages request names more than devices.max_messages_per_delete messages."""


class PageTokenInvalid(ChatConnectError):
    """The page token was not issued by this server for this list."""


class MessageNotFound(ChatConnectError):
    """No retained message has this id in this conversation with the caller in it. The
    same answer whether the message never existed or belongs to others, so that it
    reveals nothing."""

    def __init__(self, server_message_id: str) -> None:
        super().__init__(
            f"no message {server_message_id} in this conversation",
            metadata={"server_message_id": server_message_id},
        )


class NotMessageSender(ChatConnectError):
    """Only the sender may delete a one-to-one message for everyone."""

    def __init__(self, server_message_id: str) -> None:
        super().__init__(
            f"only its sender may delete message {server_message_id} for everyone",
            metadata={"server_message_id": server_message_id},
        )


class NotGroupAdmin(ChatConnectError):
    """Only the sender or a group admin may delete a group message for everyone."""

    def __init__(self, server_message_id: str) -> None:
        super().__init__(
            f"only its sender or a group admin may delete message {server_message_id} "
            "for everyone",
            metadata={"server_message_id": server_message_id},
        )


class DeleteWindowPassed(ChatConnectError):
    """The sender's time to delete the message for everyone is over."""

    def __init__(self, server_message_id: str, window_seconds: int) -> None:
        super().__init__(
            f"message {server_message_id} is older than the {window_seconds} s in which its "
            "sender may delete it for everyone (setting devices.delete_for_everyone_window_"
            "seconds)",
            metadata={
                "server_message_id": server_message_id,
                "window_seconds": str(window_seconds),
            },
        )
