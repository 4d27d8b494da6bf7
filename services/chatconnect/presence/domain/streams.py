"""One device's presence stream: what it follows, what it was last shown, and when it may
be shown something new.

The hub hands it events (synchronously, never blocking); `frames` turns them into what
the client sees: the presence of a user at most once per `min_update_interval` (later
states replace earlier ones, unchanged ones are not sent), one-to-one typing at once,
and group typing aggregated, at most once per group per `group_typing_interval`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from chatconnect.model import Clock, DeviceAddress
from chatconnect.presence.config import PresenceConfig
from chatconnect.presence.domain.errors import SubscriptionReplaced
from chatconnect.presence.domain.group_typing import GroupTypingBoard, same_summary
from chatconnect.presence.domain.models import (
    GroupTyping,
    PresenceView,
    Subscription,
    TypingIndicator,
)
from chatconnect.presence.domain.reader import PresenceReader
from chatconnect.presence.ports import (
    FeedEvent,
    FeedLost,
    PresenceChanged,
    StreamOpened,
    SubscriptionChanged,
    TypingSignal,
    device_topic,
    group_topic,
    typing_topic,
    user_topic,
)

Frame = PresenceView | TypingIndicator | GroupTyping

# Re-read a followed user this long after its lease should have run out: the process that
# held it may have crashed, and nobody else will say so.
_LAPSE_GRACE = 0.05


@dataclass
class _Followed:
    shown: PresenceView | None = None
    shown_at: float = float("-inf")
    dirty: bool = True
    lapse_at: float | None = None


@dataclass
class _Group:
    board: GroupTypingBoard
    shown: GroupTyping | None = None
    shown_at: float = float("-inf")
    due_at: float | None = None


def topics_of(device: DeviceAddress, subscription: Subscription) -> set[str]:
    """The feed topics a stream needs."""
    topics = {device_topic(device)}
    topics.update(user_topic(u) for u in subscription.user_ids)
    topics.update(group_topic(g) for g in subscription.groups)
    if subscription.peers:
        topics.add(typing_topic(device.user_id))
    return topics


class PresenceStream:
    """The state of one open Subscribe stream."""

    def __init__(
        self,
        device: DeviceAddress,
        stream_id: str,
        subscription: Subscription,
        *,
        reader: PresenceReader,
        config: PresenceConfig,
        clock: Clock,
    ) -> None:
        self.device = device
        self.stream_id = stream_id
        self.subscription = subscription
        self._reader = reader
        self._config = config
        self._clock = clock
        self._wake = asyncio.Event()
        self._followed: dict[str, _Followed] = {}
        self._groups: dict[str, _Group] = {}
        self._typing: collections.deque[TypingIndicator] = collections.deque(
            maxlen=config.subscriber_queue
        )
        self._pending: Subscription | None = None
        self._ended: Exception | None = None
        self._follow(subscription)

    @property
    def topics(self) -> set[str]:
        """The topics this stream needs now."""
        return topics_of(self.device, self.subscription)

    def _follow(self, subscription: Subscription) -> None:
        self._followed = {u: self._followed.get(u, _Followed()) for u in subscription.user_ids}
        self._groups = {
            g: self._groups.get(g)
            or _Group(GroupTypingBoard(g, max_names=self._config.max_typing_names))
            for g in subscription.groups
        }
        self.subscription = subscription

    # --- fed by the hub (synchronous, never blocks) -----------------------------------

    def offer(self, event: FeedEvent) -> None:
        """Takes one event of a followed topic."""
        if isinstance(event, PresenceChanged):
            followed = self._followed.get(event.user_id)
            if followed is not None:
                followed.dirty = True
        elif isinstance(event, TypingSignal):
            self._typed(event)
        elif isinstance(event, StreamOpened):
            if event.stream_id != self.stream_id:
                self._ended = SubscriptionReplaced(
                    "a newer Subscribe stream of this device replaced this one"
                )
        elif isinstance(event, SubscriptionChanged):
            if event.stream_id == self.stream_id:
                self._pending = event.subscription
        elif isinstance(event, FeedLost):
            for followed in self._followed.values():
                followed.dirty = True
        self._wake.set()

    def _typed(self, signal: TypingSignal) -> None:
        if signal.group_id:
            group = self._groups.get(signal.group_id)
            if group is None:
                return
            group.board.record(signal.sender.user_id, signal.state, self._clock(), signal.expire_at)
            self._schedule(group)
        elif signal.sender.user_id in self.subscription.peers:
            self._typing.append(TypingIndicator(signal.sender, signal.state, signal.expire_at))

    def _schedule(self, group: _Group) -> None:
        # Trailing edge: changes gather for one interval, so members starting to type
        # together arrive as one event ("3 people are typing").
        if group.due_at is None:
            interval = self._config.group_typing_interval
            group.due_at = max(self._clock() + interval, group.shown_at + interval)

    # --- what the client sees ------------------------------------------------------------

    async def frames(self) -> AsyncIterator[Frame | Subscription]:
        """Frames until the stream is replaced (SubscriptionReplaced) or cancelled. A
        Subscription frame says the hub must follow new topics (UpdateSubscription)."""
        while True:
            if self._ended is not None:
                raise self._ended
            if self._pending is not None:
                subscription, self._pending = self._pending, None
                # Users new to the subscription start dirty: their presence is sent.
                self._follow(subscription)
                yield subscription
            while self._typing:
                yield self._typing.popleft()
            for frame in await self._due_presence():
                yield frame
            for summary in self._due_groups():
                yield summary
            await self._sleep()

    async def _due_presence(self) -> list[PresenceView]:
        now = self._clock()
        interval = self._config.min_update_interval
        for followed in self._followed.values():
            if followed.lapse_at is not None and followed.lapse_at <= now:
                followed.dirty = True
                followed.lapse_at = None
        due = [u for u, f in self._followed.items() if f.dirty and f.shown_at + interval <= now]
        if not due:
            return []
        for user_id in due:
            self._followed[user_id].dirty = False
        frames: list[PresenceView] = []
        for seen in await self._reader.read(self.device.user_id, due):
            current = self._followed.get(seen.presence.user_id)
            if current is None:
                continue  # unsubscribed meanwhile
            followed = current
            lapse = seen.presence.next_lapse
            followed.lapse_at = None if lapse is None else lapse + _LAPSE_GRACE
            if seen.view.same_as(followed.shown):
                continue
            followed.shown = seen.view
            followed.shown_at = self._clock()
            frames.append(seen.view)
        return frames

    def _due_groups(self) -> list[GroupTyping]:
        now = self._clock()
        frames: list[GroupTyping] = []
        for group in self._groups.values():
            expiry = group.board.next_expiry()
            if expiry is not None and expiry <= now:
                self._schedule(group)
            if group.due_at is None or group.due_at > now:
                continue
            group.due_at = None
            summary = group.board.summary(self.device.user_id, now)
            if same_summary(group.shown, summary):
                continue
            group.shown, group.shown_at = summary, now
            frames.append(summary)
        return frames

    async def _sleep(self) -> None:
        deadlines: list[float] = []
        interval = self._config.min_update_interval
        for followed in self._followed.values():
            if followed.dirty:
                deadlines.append(followed.shown_at + interval)
            if followed.lapse_at is not None:
                deadlines.append(followed.lapse_at)
        for group in self._groups.values():
            expiry = group.board.next_expiry()
            if group.due_at is not None:
                deadlines.append(group.due_at)
            elif expiry is not None:
                deadlines.append(expiry)
        if self._wake.is_set():
            self._wake.clear()
            return
        timeout = max(min(deadlines) - self._clock(), 0.0) if deadlines else None
        if timeout == 0.0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()
