"""Feed events as bytes, for the Redis feed (JSON: small, and readable in redis-cli)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chatconnect.model import Conversation, DeviceAddress
from chatconnect.presence.domain.models import Subscription, TypingState
from chatconnect.presence.ports import (
    FeedEvent,
    FeedLost,
    PresenceChanged,
    StreamOpened,
    SubscriptionChanged,
    TypingSignal,
)


def encode(events: Sequence[FeedEvent]) -> bytes:
    """A batch of events of one topic."""
    return json.dumps([_item(e) for e in events], separators=(",", ":")).encode()


def _item(event: FeedEvent) -> dict[str, Any]:
    if isinstance(event, PresenceChanged):
        return {"k": "p", "u": event.user_id}
    if isinstance(event, TypingSignal):
        return {
            "k": "t",
            "u": event.sender.user_id,
            "d": event.sender.device_id,
            "g": event.group_id,
            "s": int(event.state),
            "e": event.expire_at,
        }
    if isinstance(event, StreamOpened):
        return {"k": "o", "i": event.stream_id}
    if isinstance(event, SubscriptionChanged):
        return {
            "k": "c",
            "i": event.stream_id,
            "u": list(event.subscription.user_ids),
            "c": [[c.user_id, c.group_id] for c in event.subscription.conversations],
        }
    return {"k": "l"}


def decode(payload: bytes) -> list[FeedEvent]:
    """The events of one message; unknown kinds (a newer peer) are skipped."""
    events: list[FeedEvent] = []
    for item in json.loads(payload):
        kind = item.get("k")
        if kind == "p":
            events.append(PresenceChanged(item["u"]))
        elif kind == "t":
            events.append(
                TypingSignal(
                    DeviceAddress(item["u"], int(item["d"])),
                    item["g"],
                    TypingState(int(item["s"])),
                    float(item["e"]),
                )
            )
        elif kind == "o":
            events.append(StreamOpened(item["i"]))
        elif kind == "c":
            subscription = Subscription(
                tuple(item["u"]), tuple(Conversation(u, g) for u, g in item["c"])
            )
            events.append(SubscriptionChanged(item["i"], subscription))
        elif kind == "l":
            events.append(FeedLost())
    return events
