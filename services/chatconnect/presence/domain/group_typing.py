"""Aggregated typing in a group: one event says how many members type, not one event per
typing member. Pure: fed with typing signals, asked for a receiver's summary."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.presence.domain.models import GroupTyping, TypingState


@dataclass(frozen=True)
class _Entry:
    state: TypingState
    at: float
    expire_at: float


class GroupTypingBoard:
    """Who types in one group, per member (a member's latest device wins)."""

    def __init__(self, group_id: str, *, max_names: int) -> None:
        self.group_id = group_id
        self._max_names = max_names
        self._entries: dict[str, _Entry] = {}

    def record(self, user_id: str, state: TypingState, at: float, expire_at: float) -> None:
        """A member typed, recorded, or stopped (STOPPED clears it at once)."""
        if state == TypingState.STOPPED:
            self._entries.pop(user_id, None)
        else:
            self._entries[user_id] = _Entry(state, at, expire_at)

    def summary(self, receiver_id: str, now: float) -> GroupTyping:
        """What `receiver_id` is shown: live entries of other members, most recent first."""
        for user_id in [u for u, e in self._entries.items() if e.expire_at <= now]:
            del self._entries[user_id]
        live = sorted(
            ((u, e) for u, e in self._entries.items() if u != receiver_id),
            key=lambda item: item[1].at,
            reverse=True,
        )
        return GroupTyping(
            group_id=self.group_id,
            typing_count=len(live),
            recording_count=sum(1 for _, e in live if e.state.recording),
            typing_user_ids=tuple(u for u, _ in live[: self._max_names]),
            expire_at=max((e.expire_at for _, e in live), default=now),
        )

    def next_expiry(self) -> float | None:
        """When the first entry lapses (its summary changes then), if any."""
        return min((e.expire_at for e in self._entries.values()), default=None)


def same_summary(a: GroupTyping | None, b: GroupTyping) -> bool:
    """Whether a receiver already shown `a` needs nothing new to show `b`."""
    if a is None:
        return b.typing_count == 0
    return (a.typing_count, a.recording_count, a.typing_user_ids, a.expire_at) == (
        b.typing_count,
        b.recording_count,
        b.typing_user_ids,
        b.expire_at,
    ) or (a.typing_count == 0 and b.typing_count == 0)
