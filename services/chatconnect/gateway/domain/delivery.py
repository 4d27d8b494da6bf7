"""In-order, windowed delivery of one device inbox over one connection.

One loop owns the connection's delivery state, so envelopes leave strictly in sequence
order: first the stored backlog, page by page, then `Drained`, then live envelopes. At most
`window` items are unacknowledged; an acknowledgement frees room. A live envelope that
arrives in order and fits the window is sent straight from the bus event; anything else
(a jump in sequence, a dropped event, a full window) makes the loop re-read the store,
which is the truth.

In the distributed mode two sends to one inbox may commit out of sequence order: number 10
can become readable after 11 was delivered. Its event then arrives below the delivered mark;
the loop re-reads from just below it and sends whatever it finds that this connection has
not sent (acknowledged envelopes are already deleted, unacknowledged ones are in flight).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from chatconnect.bus.ports import BusEvent, DeviceRevoked, InboxChanged, Resync, Subscription
from chatconnect.model import DeviceAddress, Envelope, InboxGap, InboxItem
from chatconnect.router.domain.inbox import InboxService
from chatconnect.runtime.mailbox import Mailbox


@dataclass(frozen=True)
class Drained:
    """The stored backlog has been delivered up to `through_sequence`."""

    through_sequence: int


@dataclass(frozen=True)
class _Acked:
    ids: tuple[str, ...]


_LOG_ENTRIES_REMEMBERED = 1000
"""Pushed group log entries awaiting the client's acknowledgement, per connection; older
ones are forgotten (they then do not count as delivered until the member reads them)."""

Outbound = Envelope | InboxGap | Drained
Emit = Callable[[Outbound], Awaitable[None]]


class DeviceRevokedWhileConnected(Exception):
    """The device was unlinked while connected."""


class DeliveryLoop:
    """Delivers one device's inbox; run it as a task for the life of the connection."""

    def __init__(
        self,
        device: DeviceAddress,
        *,
        inbox: InboxService,
        window: int,
        page_size: int,
        emit: Emit,
    ) -> None:
        self.device = device
        self._inbox = inbox
        self._window = window
        self._page_size = page_size
        self._emit = emit
        self._signals: Mailbox[BusEvent | _Acked] = Mailbox()
        self._in_flight: set[str] = set()
        self._late_after: int | None = None
        self._log_entries: dict[str, Envelope] = {}
        self.delivered_through = 0

    def acknowledged(self, ids: Sequence[str]) -> None:
        """The client acknowledged these ids (already removed from the store)."""
        self._signals.put_nowait(_Acked(tuple(ids)))

    def take_log_entries(self, ids: Sequence[str]) -> list[Envelope]:
        """The pushed group log entries among acknowledged `ids` (each reported once)."""
        return [e for e in (self._log_entries.pop(i, None) for i in ids) if e is not None]

    def _room(self) -> int:
        return self._window - len(self._in_flight)

    async def run(self, events: Subscription) -> None:
        """Delivers until cancelled; raises DeviceRevokedWhileConnected on revocation."""
        pump = asyncio.create_task(self._pump(events))
        try:
            await self._deliver()
        finally:
            pump.cancel()

    async def _pump(self, events: Subscription) -> None:
        async for event in events:
            self._signals.put_nowait(event)

    async def _deliver(self) -> None:
        must_read = True
        drained_sent = False
        while True:
            if self._late_after is not None and self._room() > 0:
                await self._deliver_late(self._late_after)
                continue
            if must_read and self._room() > 0:
                limit = min(self._page_size, self._room())
                page = await self._inbox.page(
                    self.device, after_sequence=self.delivered_through, limit=limit
                )
                for item in page.items:
                    await self._send(item)
                must_read = page.more
                if not must_read and not drained_sent:
                    await self._emit(Drained(self.delivered_through))
                    drained_sent = True
                continue
            signal = await self._signals.get()
            if isinstance(signal, _Acked):
                self._in_flight.difference_update(signal.ids)
            elif isinstance(signal, DeviceRevoked):
                raise DeviceRevokedWhileConnected(str(self.device))
            elif isinstance(signal, Resync):
                must_read = True
            elif isinstance(signal, InboxChanged):
                if signal.envelope is not None and signal.envelope.group_log_position:
                    # A large group's message lives in the group log, not the inbox: it is
                    # outside the inbox order and window. Its acknowledgement only counts
                    # it as delivered, so it is remembered until then.
                    self._log_entries[signal.envelope.server_message_id] = signal.envelope
                    while len(self._log_entries) > _LOG_ENTRIES_REMEMBERED:
                        self._log_entries.pop(next(iter(self._log_entries)))
                    await self._emit(signal.envelope)
                    continue
                if signal.sequence <= self.delivered_through:
                    self._note_late(signal)
                    continue
                in_order = signal.sequence == self.delivered_through + 1
                if (
                    drained_sent
                    and not must_read
                    and in_order
                    and signal.envelope is not None
                    and self._room() > 0
                ):
                    await self._send(signal.envelope)
                else:
                    must_read = True

    def _note_late(self, signal: InboxChanged) -> None:
        """An event at or below the delivered mark: a repeat, or a send that committed
        after a higher sequence was delivered."""
        if signal.envelope is not None and signal.envelope.server_message_id in self._in_flight:
            return
        after = signal.sequence - 1
        self._late_after = after if self._late_after is None else min(self._late_after, after)

    async def _deliver_late(self, after: int) -> None:
        """Sends what is stored between `after` and the delivered mark that this connection
        has not sent."""
        self._late_after = None
        limit = min(self._page_size, self._room()) + len(self._in_flight)
        page = await self._inbox.page(self.device, after_sequence=after, limit=limit)
        examined = after
        for item in page.items:
            first, last = (
                (item.sequence, item.sequence)
                if isinstance(item, Envelope)
                else (item.first_sequence, item.last_sequence)
            )
            if first > self.delivered_through:
                return
            if self._room() <= 0:
                self._late_after = examined  # the window is full: go on once acks free it
                return
            if _item_id(item) not in self._in_flight:
                await self._send(item)
            examined = last
        if page.more:
            self._late_after = examined

    async def _send(self, item: InboxItem) -> None:
        if isinstance(item, InboxGap):
            self._in_flight.add(item.gap_id)
            self.delivered_through = max(self.delivered_through, item.last_sequence)
        else:
            self._in_flight.add(item.server_message_id)
            self.delivered_through = max(self.delivered_through, item.sequence)
        await self._emit(item)


def _item_id(item: InboxItem) -> str:
    return item.gap_id if isinstance(item, InboxGap) else item.server_message_id
