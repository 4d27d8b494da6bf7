"""Storage port of the router: idempotency records and device inboxes."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from chatconnect.model import DeviceAddress, Envelope, InboxItem
from chatconnect.router.domain.models import Delivery, PendingSend, SendResult


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
    async def acknowledge(self, device: DeviceAddress, ids: Sequence[str]) -> list[Envelope]:
        """Removes acknowledged envelopes (by server message id) and gaps (by gap id);
        returns the envelopes that were removed now. Unknown ids are ignored."""


class ExpirySweeper(abc.ABC):
    """A store that must be told to enforce retention (the embedded one; the ScyllaDB
    store's rows carry TTLs)."""

    @abc.abstractmethod
    async def sweep(self, now: float, *, limit: int) -> int:
        """Turns up to `limit` expired envelopes into gaps and drops expired idempotency
        records; returns how many envelopes expired."""
