"""Errors of the presence service."""

from __future__ import annotations

from chatconnect.runtime.errors import ChatConnectError, FieldInvalid, FieldMissing, LimitExceeded


class UserIdInvalid(FieldInvalid):
    """A user id is empty or not a UUID string."""


class StateInvalid(FieldInvalid):
    """A presence or typing state is unspecified or unknown."""


class ConversationMissing(FieldMissing):
    """SendTyping names no conversation."""


class TooManySubscriptions(LimitExceeded):
    """A subscription follows more than presence.max_subscriptions users."""


class TooManyTypingConversations(LimitExceeded):
    """A subscription names more than presence.max_typing_conversations conversations."""


class TooManyUsers(LimitExceeded):
    """GetPresence asks for more than presence.max_batch_users users."""


class NotAParticipant(ChatConnectError):
    """The caller is not a member of the group (or names itself as a one-to-one peer)."""

    def __init__(self, conversation: str) -> None:
        super().__init__(
            f"you are not a participant of {conversation}",
            metadata={"conversation": conversation},
        )


class NoOpenSubscription(ChatConnectError):
    """UpdateSubscription was called while the device holds no Subscribe stream."""


class SubscriptionReplaced(ChatConnectError):
    """A newer Subscribe stream of the same device replaced this one."""
