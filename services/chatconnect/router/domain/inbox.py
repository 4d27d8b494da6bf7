"""Reading and acknowledging a device inbox, and the receipts that follow."""

from __future__ import annotations

import asyncio
import base64
from collections import defaultdict
from collections.abc import Callable, Sequence

from chatconnect.devices.ports import DeviceDirectory
from chatconnect.model import (
    CLIENT_ENVELOPE_TYPES,
    Clock,
    Conversation,
    DeviceAddress,
    Envelope,
    EnvelopeType,
    InboxPage,
    Receipt,
    ReceiptType,
)
from chatconnect.router.config import RouterConfig
from chatconnect.router.domain.errors import PageTokenInvalid, ReceiptTypeInvalid, TooManyIds
from chatconnect.router.domain.group_reading import GroupReading
from chatconnect.router.domain.models import ReceivedMessage
from chatconnect.router.domain.sending import Deliverer, server_send
from chatconnect.router.ports import MessageStore
from chatconnect.runtime.errors import FieldInvalid

_TOKEN_PREFIX = "v1:"
MAX_SEQUENCE = 2**63 - 1
"""Sequences are signed 64-bit integers in every store."""


def encode_page_token(after_sequence: int) -> str:
    """An opaque token for "continue after this sequence"."""
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{after_sequence}".encode()).decode()


def decode_page_token(token: str) -> int:
    """The sequence a page token continues after; "" means the start."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        if not text.startswith(_TOKEN_PREFIX):
            raise ValueError(text)
        value = int(text[len(_TOKEN_PREFIX) :])
    except (ValueError, UnicodeDecodeError):
        raise PageTokenInvalid("page_token was not issued by this server") from None
    if not 0 <= value <= MAX_SEQUENCE:
        raise PageTokenInvalid("page_token was not issued by this server")
    return value


class InboxService:
    """A device's view of its inbox."""

    def __init__(
        self,
        *,
        store: MessageStore,
        directory: DeviceDirectory,
        deliverer: Deliverer,
        groups: GroupReading,
        config: RouterConfig,
        clock: Clock,
    ) -> None:
        self._store = store
        self._directory = directory
        self._deliverer = deliverer
        self._groups = groups
        self._config = config
        self._clock = clock

    def page_size(self, requested: int) -> int:
        """The page size in force for a request (0 means the default)."""
        if requested < 0:
            raise FieldInvalid("page_size", "must not be negative")
        if requested == 0:
            return self._config.sync_page_size
        return min(requested, self._config.max_sync_page_size)

    async def page(self, device: DeviceAddress, *, after_sequence: int, limit: int) -> InboxPage:
        """Up to `limit` items after `after_sequence`."""
        items = await self._store.read(
            device, after_sequence=after_sequence, limit=limit, now=self._clock()
        )
        last = after_sequence
        if items:
            tail = items[-1]
            last = tail.sequence if isinstance(tail, Envelope) else tail.last_sequence
        return InboxPage(items, last, more=len(items) == limit)

    async def acknowledge(
        self,
        device: DeviceAddress,
        ids: Sequence[str],
        *,
        log_entries: Sequence[Envelope] = (),
        on_removed: Callable[[], None] | None = None,
    ) -> None:
        """Removes the items and sends delivery receipts for messages from other users.

        `log_entries` are the large-group messages among `ids` that were pushed to the
        device: they live in the group log, not the inbox, so the inbox is not asked about
        them (on a large group that is one store call saved per member per message); they
        only count as delivered.

        `on_removed` runs once the items are gone and before the receipts go out: a stream
        frees its delivery window there, so the next envelopes flow while the receipts are
        committed (and even if committing them fails)."""
        if len(ids) > self._config.max_ids_per_ack:
            raise TooManyIds(
                "ids",
                setting="router.max_ids_per_ack",
                limit=self._config.max_ids_per_ack,
                actual=len(ids),
            )
        if not ids:
            return
        logged = {entry.server_message_id for entry in log_entries}
        in_inbox = [i for i in ids if i not in logged]
        removed = await self._store.acknowledge(device, in_inbox) if in_inbox else []
        if on_removed is not None:
            on_removed()
        by_sender: dict[str, list[str]] = defaultdict(list)
        in_groups = [(e.destination.group_id, e.server_time) for e in log_entries]
        for message in removed:
            if (
                message.type in CLIENT_ENVELOPE_TYPES
                and message.sender is not None
                and message.sender.user_id != device.user_id
            ):
                if message.group_id:
                    # Tallied per group, never one receipt per member per message.
                    if message.type == EnvelopeType.SENDER_KEY_CIPHERTEXT:
                        in_groups.append((message.group_id, message.server_time))
                    continue
                by_sender[message.sender.user_id].append(message.server_message_id)
        if in_groups:
            await self._groups.acknowledged(device, in_groups)
        await self._send_receipts(device, ReceiptType.DELIVERED, by_sender)

    async def send_receipts(
        self,
        reader: DeviceAddress,
        *,
        receipt_type: ReceiptType,
        messages: Sequence[ReceivedMessage],
    ) -> None:
        """Sends READ or PLAYED receipts: to the senders' devices for 1:1 messages, into
        the group tally for group messages."""
        if receipt_type not in (ReceiptType.READ, ReceiptType.PLAYED):
            raise ReceiptTypeInvalid("type must be READ or PLAYED")
        if len(messages) > self._config.max_receipt_messages:
            raise TooManyIds(
                "messages",
                setting="router.max_receipt_messages",
                limit=self._config.max_receipt_messages,
                actual=len(messages),
            )
        by_sender: dict[str, list[str]] = defaultdict(list)
        in_groups: list[tuple[str, str]] = []
        for message in messages:
            if not message.sender_user_id or not message.server_message_id:
                raise FieldInvalid(
                    "messages", "every message needs sender_user_id and server_message_id"
                )
            if message.group_id:
                in_groups.append((message.group_id, message.server_message_id))
            else:
                by_sender[message.sender_user_id].append(message.server_message_id)
        if in_groups:
            await self._groups.receipts(reader, receipt_type, in_groups)
        await self._send_receipts(reader, receipt_type, by_sender)

    async def _send_receipts(
        self, by: DeviceAddress, receipt_type: ReceiptType, by_sender: dict[str, list[str]]
    ) -> None:
        """One receipt per sender, to each of the sender's devices. The senders' devices
        come from one bulk read and the receipts are committed together, so an
        acknowledgement covering messages from many people costs a few round trips, not
        two per person (and the embedded store puts them under one COMMIT)."""
        if not by_sender:
            return
        devices = await self._directory.list_devices_of(list(by_sender))
        now = self._clock()
        sends = [
            self._deliverer.commit_and_push(
                server_send(
                    (DeviceAddress(sender_user, d.device_id) for d in devices[sender_user]),
                    type=EnvelopeType.RECEIPT,
                    sender=by,
                    destination=Conversation(user_id=sender_user),
                    now=now,
                    retention_seconds=self._config.retention_seconds,
                    receipt=Receipt(receipt_type, by, tuple(ids), now),
                )
            )
            for sender_user, ids in by_sender.items()
            if sender_user in devices
        ]
        if len(sends) == 1:
            # The usual acknowledgement covers one sender: no task for it (every 1:1
            # message's receipt comes this way).
            await sends[0]
        elif sends:
            await asyncio.gather(*sends)
