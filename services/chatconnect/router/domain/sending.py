"""The send path: validate, deduplicate, check devices, commit durably, then push."""

from __future__ import annotations

from collections.abc import Iterable

from chatconnect.bus.ports import Bus, RateLimiter
from chatconnect.devices.domain.models import DeviceRecord
from chatconnect.devices.ports import DeviceDirectory
from chatconnect.groups.config import GroupsConfig
from chatconnect.model import (
    Clock,
    Conversation,
    DeviceAddress,
    Envelope,
    EnvelopeType,
    Notice,
    Receipt,
)
from chatconnect.router.config import RouterConfig
from chatconnect.router.domain import device_check
from chatconnect.router.domain.envelopes import (
    client_envelope,
    inbox_event,
    new_server_message_id,
)
from chatconnect.router.domain.errors import DeviceListMismatchError
from chatconnect.router.domain.group_sending import GroupSender
from chatconnect.router.domain.models import (
    Delivery,
    DeviceListMismatch,
    OutgoingMessage,
    PendingSend,
    SendResult,
)
from chatconnect.router.domain.validation import check_outgoing
from chatconnect.router.ports import MessageStore
from chatconnect.runtime.errors import RateLimited, UserNotFound
from chatconnect.sharding.fence import EpochFence


class Deliverer:
    """Commits deliveries durably, then tells the online devices."""

    def __init__(self, *, store: MessageStore, bus: Bus) -> None:
        self._store = store
        self._bus = bus

    async def commit_and_push(self, send: PendingSend) -> SendResult:
        """The commit is the acknowledgement point; the push after it is best effort."""
        result, deliveries = await self._store.commit(send)
        if deliveries:
            await self._bus.publish([inbox_event(d) for d in deliveries])
        return result


def server_send(
    recipients: Iterable[DeviceAddress],
    *,
    type: EnvelopeType,
    sender: DeviceAddress | None,
    destination: Conversation,
    now: float,
    retention_seconds: int,
    receipt: Receipt | None = None,
    notice: Notice | None = None,
) -> PendingSend:
    """A server-generated envelope (receipt, notice) for each recipient; no idempotency."""
    server_message_id = new_server_message_id()
    expire_time = now + retention_seconds
    envelope = Envelope(
        server_message_id=server_message_id,
        sequence=0,
        type=type,
        sender=sender,
        client_message_id="",
        destination=destination,
        content=b"",
        server_time=now,
        expire_time=expire_time,
        receipt=receipt,
        notice=notice,
    )
    return PendingSend(
        None,
        "",
        server_message_id,
        now,
        expire_time,
        tuple(Delivery(recipient, envelope) for recipient in recipients),
    )


class SendService:
    """Accepts sends from authenticated devices: 1:1 here, group sends through the
    GroupSender."""

    def __init__(
        self,
        *,
        store: MessageStore,
        directory: DeviceDirectory,
        deliverer: Deliverer,
        limiter: RateLimiter,
        fence: EpochFence,
        groups: GroupSender,
        config: RouterConfig,
        groups_config: GroupsConfig,
        clock: Clock,
    ) -> None:
        self._store = store
        self._directory = directory
        self._deliverer = deliverer
        self._limiter = limiter
        self._fence = fence
        self._groups = groups
        self._config = config
        self._groups_config = groups_config
        self._clock = clock

    async def send(self, sender: DeviceAddress, message: OutgoingMessage) -> SendResult:
        """Returns once the message is durable for every addressed device."""
        check_outgoing(sender, message, self._config, self._groups_config)
        # Before anything touches the store: a sender routing by an old shard map must
        # re-route, not write into a region that may no longer own the shard.
        await self._fence.check(message.shard_epoch)
        if message.destination.group_id:
            previous = await self._store.find_send(sender, message.client_message_id)
            if previous is not None:
                return await self._groups.complete(sender, message, previous)
            await self._admit(sender)
            return await self._groups.send(sender, message, new_server_message_id())
        # A retried 1:1 send is found by the commit itself, which claims the client
        # message id, so the store is read first only when this send would be refused: a
        # retry of one already made is answered as made, even once the sender is over
        # its rate or the recipient's devices have changed.
        try:
            await self._admit(sender)
            await self._check_devices(sender, message)
        except (RateLimited, UserNotFound, DeviceListMismatchError):
            previous = await self._store.find_send(sender, message.client_message_id)
            if previous is not None:
                return previous
            raise
        now = self._clock()
        server_message_id = new_server_message_id()
        expire_time = now + self._config.retention_seconds
        deliveries = tuple(
            Delivery(
                c.device,
                client_envelope(
                    sender,
                    message,
                    server_message_id=server_message_id,
                    type=c.type,
                    content=c.content,
                    now=now,
                    expire_time=expire_time,
                ),
            )
            for c in message.ciphertexts
        )
        return await self._deliverer.commit_and_push(
            PendingSend(
                sender, message.client_message_id, server_message_id, now, expire_time, deliveries
            )
        )

    async def _admit(self, sender: DeviceAddress) -> None:
        """Takes one of the sender's send tokens; RateLimited if there is none."""
        decision = await self._limiter.acquire(
            f"send:{sender}",
            rate_per_second=self._config.sends_per_second,
            burst=self._config.send_burst,
        )
        if not decision.allowed:
            raise RateLimited("device", decision.retry_after_seconds)

    async def _check_devices(self, sender: DeviceAddress, message: OutgoingMessage) -> None:
        recipient = message.destination.user_id
        # Both lists in one read: this runs for every 1:1 message.
        listed = await self._directory.list_devices_of([recipient, sender.user_id])
        recipient_devices = listed.get(recipient, [])
        if not recipient_devices:
            raise UserNotFound(recipient)
        own_devices = listed.get(sender.user_id, [])
        mismatches: list[DeviceListMismatch] = []
        checks: list[tuple[str, list[DeviceRecord]]] = (
            [(sender.user_id, own_devices)]
            if recipient == sender.user_id
            else [(recipient, recipient_devices), (sender.user_id, own_devices)]
        )
        for user_id, devices in checks:
            addressed = [c for c in message.ciphertexts if c.device.user_id == user_id]
            found = device_check.compare(
                user_id,
                devices,
                addressed,
                excluded_device=sender.device_id if user_id == sender.user_id else None,
            )
            if found is not None:
                mismatches.append(found)
        if mismatches:
            raise DeviceListMismatchError(mismatches)
