"""Storage port of the router: idempotency records and device inboxes."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from chatconnect.model import DeviceAddress, Envelope, InboxItem, ReceiptType
from chatconnect.router.domain.models import (
    Acknowledged,
    Delivery,
    GroupMessage,
    PendingSend,
    ReceiptCounts,
    SendResult,
)


class MessageStore(abc.ABC):
    """Durable sends and per-device inboxes.

    Guarantees every adapter must give (tests/router/test_store_contract.py):
    * `commit` is atomic and idempotent per (sender, client message id);
    * sequences of one inbox are strictly increasing and never reused, even after the
      inbox's rows are gone;
    * `read` returns items in sequence order; an envelope whose retention passed is never
      returned, and is reported as a gap until acknowledged.

    Sequences may skip numbers (a distributed store may draw some for a retry it then
    recognises as a duplicate); clients rely on order and uniqueness, never on contiguity.
    """

    @abc.abstractmethod
    async def find_send(self, sender: DeviceAddress, client_message_id: str) -> SendResult | None:
        """The recorded result of an earlier send with this client message id."""

    @abc.abstractmethod
    async def commit(self, send: PendingSend) -> tuple[SendResult, list[Delivery]]:
        """Writes every delivery with a fresh sequence and records the send.

        If the sender already sent this client message id, returns the original result
        (duplicate=True) and writes nothing new: no deliveries if the original commit had
        finished; if it may not have (it failed or is still running), the original's writes
        are completed, identically, and those deliveries are returned so they get pushed.
        """

    @abc.abstractmethod
    async def read(
        self, device: DeviceAddress, *, after_sequence: int, limit: int, now: float
    ) -> list[InboxItem]:
        """Up to `limit` items after `after_sequence`, in sequence order."""

    @abc.abstractmethod
    async def acknowledge(self, device: DeviceAddress, ids: Sequence[str]) -> list[Acknowledged]:
        """Removes acknowledged envelopes (by server message id) and gaps (by gap id);
        returns what the receipts need of the envelopes removed now, in sequence order.
        Unknown ids are ignored."""


class ExpirySweeper(abc.ABC):
    """A store that must be told to enforce retention (the embedded one; the ScyllaDB
    store's rows carry TTLs)."""

    @abc.abstractmethod
    async def sweep(self, now: float, *, limit: int) -> int:
        """Turns up to `limit` expired envelopes into gaps and drops expired idempotency
        records; returns how many envelopes expired."""


class GroupLog(abc.ABC):
    """Group messages: a record of every one (for receipt summaries and sync checks) and,
    for large groups, the message itself, stored once and read by cursor.

    Guarantees every adapter must give (tests/router/test_group_log_contract.py):
    * `record` and `append` are idempotent by server message id: a retry after a crash
      stores nothing twice and returns the original position;
    * positions of one group's log are strictly increasing, and an entry becomes readable
      only after every lower position is, so a reader that has position P never misses an
      entry below P that appears later.
    """

    @abc.abstractmethod
    async def record(self, message: GroupMessage) -> None:
        """Records that a group message was accepted (with or without a log entry)."""

    @abc.abstractmethod
    async def find(self, group_id: str, server_message_id: str) -> GroupMessage | None:
        """The record of a group message, while it is retained."""

    @abc.abstractmethod
    async def append(self, group_id: str, envelope: Envelope) -> int:
        """Stores `envelope` once in the group's log; returns its position (the original
        one when this server message id was appended before)."""

    @abc.abstractmethod
    async def read(
        self, group_id: str, *, after_position: int, limit: int, now: float
    ) -> list[Envelope]:
        """Up to `limit` unexpired entries after `after_position`, in position order, each
        with `group_log_position` set."""

    @abc.abstractmethod
    async def head(self, group_id: str) -> int:
        """The highest position of the group's log; 0 when it is empty."""


class ReceiptTally(abc.ABC):
    """Delivered / read / played counts of group messages, without a write per member per
    message: a member's delivered and read progress in a group is one watermark (the server
    time of the newest message it reached), and a message's count is how many members'
    watermarks reach its server time. Plays are not in order, so they are kept per message.
    """

    @abc.abstractmethod
    async def advance(
        self, group_id: str, kind: ReceiptType, user_id: str, through_time: float
    ) -> None:
        """Moves the member's DELIVERED or READ watermark forward to `through_time` (never
        back)."""

    @abc.abstractmethod
    async def mark_played(self, group_id: str, server_message_id: str, user_id: str) -> None:
        """Counts the member as having played the message."""

    @abc.abstractmethod
    async def counts(self, message: GroupMessage) -> ReceiptCounts:
        """The members (other than the sender) that reached the message."""
