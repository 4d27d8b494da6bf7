"""Receipt counts of group messages in this process's memory (the embedded mode).

Like presence, counts are reconstructible: after a restart they start again from the
receipts that arrive."""

from __future__ import annotations

from collections import defaultdict

from chatconnect.model import ReceiptType
from chatconnect.router.domain.models import GroupMessage, ReceiptCounts
from chatconnect.router.ports import ReceiptTally


class InProcessReceiptTally(ReceiptTally):
    """Watermarks and plays in dictionaries."""

    def __init__(self) -> None:
        self._watermarks: dict[tuple[str, ReceiptType], dict[str, float]] = defaultdict(dict)
        self._plays: dict[tuple[str, str], set[str]] = defaultdict(set)

    async def advance(
        self, group_id: str, kind: ReceiptType, user_id: str, through_time: float
    ) -> None:
        marks = self._watermarks[(group_id, kind)]
        marks[user_id] = max(marks.get(user_id, through_time), through_time)

    async def mark_played(self, group_id: str, server_message_id: str, user_id: str) -> None:
        self._plays[(group_id, server_message_id)].add(user_id)

    async def counts(self, message: GroupMessage) -> ReceiptCounts:
        sender = message.sender.user_id

        def reached(kind: ReceiptType) -> int:
            marks = self._watermarks.get((message.group_id, kind), {})
            return sum(
                1 for user, t in marks.items() if user != sender and t >= message.server_time
            )

        plays = self._plays.get((message.group_id, message.server_message_id), set())
        return ReceiptCounts(
            delivered=reached(ReceiptType.DELIVERED),
            read=reached(ReceiptType.READ),
            played=len(plays - {sender}),
        )
