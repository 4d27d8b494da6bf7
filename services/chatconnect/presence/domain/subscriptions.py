"""What a presence stream may follow: valid ids, bounded lists, conversations the caller
takes part in."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence

from chatconnect.groups.ports import GroupDirectory
from chatconnect.model import Conversation, DeviceAddress
from chatconnect.presence.config import PresenceConfig
from chatconnect.presence.domain.errors import (
    ConversationMissing,
    NotAParticipant,
    TooManySubscriptions,
    TooManyTypingConversations,
    TooManyUsers,
    UserIdInvalid,
)
from chatconnect.presence.domain.models import Subscription


def check_user_id(value: str, field_name: str) -> str:
    """`value` if it is a user id (a UUID string); UserIdInvalid otherwise."""
    with contextlib.suppress(ValueError):  # not even UUID-shaped
        if str(uuid.UUID(value)) == value.lower():
            return value
    raise UserIdInvalid(field_name, f"{value[:64]!r} is not a user id")


def check_user_ids(user_ids: Sequence[str], field_name: str) -> tuple[str, ...]:
    """Valid, distinct user ids in the order given."""
    return tuple(dict.fromkeys(check_user_id(u, field_name) for u in user_ids))


def check_batch(user_ids: Sequence[str], config: PresenceConfig) -> tuple[str, ...]:
    """The users of one GetPresence, within presence.max_batch_users."""
    if len(user_ids) > config.max_batch_users:
        raise TooManyUsers(
            "GetPresence user_ids",
            setting="presence.max_batch_users",
            limit=config.max_batch_users,
            actual=len(user_ids),
        )
    return tuple(check_user_id(u, "user_ids") for u in user_ids)


class SubscriptionPolicy:
    """Checks a requested subscription; nothing changes when a check fails."""

    def __init__(self, *, groups: GroupDirectory, config: PresenceConfig) -> None:
        self._groups = groups
        self._config = config

    async def check(
        self,
        device: DeviceAddress,
        user_ids: Sequence[str],
        conversations: Sequence[Conversation],
    ) -> Subscription:
        """The subscription in force for this request (duplicates removed)."""
        limit = self._config.max_subscriptions
        # Counted before the ids are parsed: a list of thousands is refused cheaply.
        if len(set(user_ids)) > limit:
            raise TooManySubscriptions(
                "subscription user_ids",
                setting="presence.max_subscriptions",
                limit=limit,
                actual=len(set(user_ids)),
            )
        users = check_user_ids(user_ids, "subscription.user_ids")
        wanted = tuple(dict.fromkeys(conversations))
        typing_limit = self._config.max_typing_conversations
        if len(wanted) > typing_limit:
            raise TooManyTypingConversations(
                "subscription conversations",
                setting="presence.max_typing_conversations",
                limit=typing_limit,
                actual=len(wanted),
            )
        await asyncio.gather(
            *(self.check_participant(device, c, "subscription.conversations") for c in wanted)
        )
        return Subscription(users, wanted)

    async def check_participant(
        self, device: DeviceAddress, conversation: Conversation, field_name: str
    ) -> None:
        """NotAParticipant unless the caller takes part in `conversation`."""
        if conversation.group_id:
            membership = await self._groups.membership(conversation.group_id)
            if membership is None or device.user_id not in membership.roles:
                raise NotAParticipant(f"group {conversation.group_id}")
            return
        if not conversation.user_id:
            raise ConversationMissing(field_name)
        check_user_id(conversation.user_id, field_name)
        if conversation.user_id == device.user_id:
            raise NotAParticipant("a conversation with yourself")
