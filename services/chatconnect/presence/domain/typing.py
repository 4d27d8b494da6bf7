"""Typing indicators: ephemeral (published, never stored), rate limited per device per
conversation, only for participants."""

from __future__ import annotations

from chatconnect.bus.ports import RateLimiter
from chatconnect.model import Clock, Conversation, DeviceAddress
from chatconnect.presence.config import PresenceConfig
from chatconnect.presence.domain.errors import ConversationMissing, StateInvalid
from chatconnect.presence.domain.models import TypingState
from chatconnect.presence.domain.subscriptions import SubscriptionPolicy
from chatconnect.presence.ports import (
    PresenceFeed,
    PresenceStore,
    TypingSignal,
    group_topic,
    typing_topic,
)
from chatconnect.runtime.errors import RateLimited, RequestIdMissing


class TypingService:
    """SendTyping."""

    def __init__(
        self,
        *,
        store: PresenceStore,
        feed: PresenceFeed,
        policy: SubscriptionPolicy,
        limiter: RateLimiter,
        config: PresenceConfig,
        clock: Clock,
    ) -> None:
        self._store = store
        self._feed = feed
        self._policy = policy
        self._limiter = limiter
        self._config = config
        self._clock = clock

    async def send(
        self,
        device: DeviceAddress,
        conversation: Conversation,
        state: TypingState,
        *,
        request_id: str,
    ) -> float:
        """Tells the conversation's subscribed participants; returns when receivers drop
        the indicator unless it is sent again. A repeat of `request_id` sends nothing."""
        if not request_id:
            raise RequestIdMissing()
        if not conversation.user_id and not conversation.group_id:
            raise ConversationMissing("conversation")
        if state == TypingState.UNSPECIFIED or state not in TypingState:
            raise StateInvalid(
                "state", "must be TYPING, RECORDING_AUDIO, RECORDING_VIDEO or STOPPED"
            )
        kept = await self._store.recall(device, request_id)
        if kept is not None:
            return float(kept)
        await self._policy.check_participant(device, conversation, "conversation")
        target = (
            f"g:{conversation.group_id}" if conversation.group_id else f"u:{conversation.user_id}"
        )
        decision = await self._limiter.acquire(
            f"typing:{device}:{target}",
            rate_per_second=self._config.typing_events_per_minute / 60.0,
            burst=self._config.typing_burst,
        )
        if not decision.allowed:
            raise RateLimited("conversation", decision.retry_after_seconds)
        now = self._clock()
        expire_at = now if state == TypingState.STOPPED else now + self._config.typing_ttl
        first = float(
            await self._store.remember(
                device, request_id, repr(expire_at), ttl_seconds=self._config.request_id_ttl_seconds
            )
        )
        if first != expire_at:
            return first  # a concurrent repeat got there first and sent it
        signal = TypingSignal(device, conversation.group_id, state, expire_at)
        topic = (
            group_topic(conversation.group_id)
            if conversation.group_id
            else typing_topic(conversation.user_id)
        )
        await self._feed.publish({topic: [signal]})
        return expire_at
