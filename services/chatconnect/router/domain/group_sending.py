"""Group sends: one ciphertext for the whole group (sender keys), checked against the
membership as stored at send time, then fanned out on write or stored once on read.

Small groups get the message written into every member device's inbox (fan-out-on-write),
committed as one idempotent send and pushed in bounded batches, each grouped per gateway by
the bus. Groups above `groups.fan_out_on_read_threshold` store it once in the group log;
connected member devices get it pushed and the others sync the log by cursor. Sender-key
distributions (pairwise ciphertexts for devices that lack the sender's key) always go to
device inboxes, committed before the message so a device meets the key first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from chatconnect.bus.ports import Bus, InboxChanged
from chatconnect.devices.domain.models import DeviceRecord
from chatconnect.devices.ports import DeviceDirectory
from chatconnect.groups.config import GroupsConfig
from chatconnect.groups.domain.errors import GroupNotFound, NotAMember
from chatconnect.groups.domain.models import GroupMembership
from chatconnect.groups.ports import GroupDirectory
from chatconnect.model import Clock, DeviceAddress, Envelope, EnvelopeType
from chatconnect.router.config import RouterConfig
from chatconnect.router.domain import device_check
from chatconnect.router.domain.envelopes import (
    client_envelope,
    inbox_event,
    new_server_message_id,
)
from chatconnect.router.domain.errors import (
    DeviceListMismatchError,
    GroupSendStale,
    NotAParticipant,
    OnlyAdminsSend,
)
from chatconnect.router.domain.models import (
    Delivery,
    DeviceListMismatch,
    GroupMessage,
    OutgoingMessage,
    PendingSend,
    SendResult,
)
from chatconnect.router.ports import GroupLog, MessageStore

KEY_DISTRIBUTION_SUFFIX = "#keys"
"""Appended to the client message id for the send that carries sender-key distributions,
so it has its own idempotency record and a retry completes whichever part is missing."""


class GroupSender:
    """Accepts group sends from authenticated, rate-checked devices."""

    def __init__(
        self,
        *,
        store: MessageStore,
        log: GroupLog,
        groups: GroupDirectory,
        directory: DeviceDirectory,
        bus: Bus,
        config: RouterConfig,
        groups_config: GroupsConfig,
        clock: Clock,
    ) -> None:
        self._store = store
        self._log = log
        self._groups = groups
        self._directory = directory
        self._bus = bus
        self._config = config
        self._groups_config = groups_config
        self._clock = clock

    async def send(
        self, sender: DeviceAddress, message: OutgoingMessage, server_message_id: str
    ) -> SendResult:
        """Returns once the message is durable for every member device (in their inboxes,
        or once in the group log)."""
        membership = await self._current_membership(sender, message)
        members = await self._directory.list_devices_of(membership.member_ids)
        self._check_key_distributions(message, members)
        now = self._clock()
        expire_time = now + self._config.retention_seconds
        if message.ciphertexts:
            await self._distribute_keys(sender, message, now, expire_time)
        recipients = [
            DeviceAddress(user_id, device.device_id)
            for user_id, devices in members.items()
            for device in devices
            if DeviceAddress(user_id, device.device_id) != sender
        ]
        group_id = message.destination.group_id
        envelope = self._envelope(sender, message, server_message_id, now, expire_time)
        await self._log.record(
            GroupMessage(
                group_id=group_id,
                server_message_id=server_message_id,
                sender=sender,
                server_time=now,
                expire_time=expire_time,
                recipient_count=len(membership.roles) - 1,
            )
        )
        if self.reads_from_log(membership):
            # The idempotency record (and the message's origin, for deletes): the message
            # itself goes once into the log.
            result, _ = await self._store.commit(
                PendingSend(
                    sender,
                    message.client_message_id,
                    server_message_id,
                    now,
                    expire_time,
                    (),
                    destination=message.destination,
                )
            )
            if result.duplicate:
                return await self.complete(sender, message, result)
            position = await self._log.append(group_id, envelope)
            await self._push_log_entry(envelope, position, recipients)
            return result
        result, committed = await self._store.commit(
            PendingSend(
                sender,
                message.client_message_id,
                server_message_id,
                now,
                expire_time,
                tuple(Delivery(r, envelope) for r in recipients),
            )
        )
        await self._push(committed)
        return result

    async def complete(
        self, sender: DeviceAddress, message: OutgoingMessage, previous: SendResult
    ) -> SendResult:
        """A repeat of an accepted group send: makes sure its log entry exists (the first
        attempt may have stopped between its idempotency record and the log), then reports
        the original result."""
        group_id = message.destination.group_id
        recorded = await self._log.find(group_id, previous.server_message_id)
        if recorded is None or not message.group_content:
            return previous
        membership = await self._groups.membership(group_id)
        if membership is not None and self.reads_from_log(membership):
            envelope = self._envelope(
                sender,
                message,
                previous.server_message_id,
                recorded.server_time,
                recorded.expire_time,
            )
            await self._log.append(group_id, envelope)
        return previous

    def reads_from_log(self, membership: GroupMembership) -> bool:
        """Whether the group is large enough to be fanned out on read."""
        return len(membership.roles) > self._groups_config.fan_out_on_read_threshold

    async def _current_membership(
        self, sender: DeviceAddress, message: OutgoingMessage
    ) -> GroupMembership:
        # Read from the store on every send, never cached: a removal takes effect for the
        # very next message.
        group_id = message.destination.group_id
        membership = await self._groups.membership(group_id)
        if membership is None:
            raise GroupNotFound(f"no group has id {group_id}")
        role = membership.role_of(sender.user_id)
        if role is None:
            raise NotAMember(f"you are not a member of group {group_id}")
        if membership.settings.only_admins_send and not role.is_admin:
            raise OnlyAdminsSend(f"only admins may send to group {group_id}")
        if message.group_membership_version != membership.membership_version:
            raise GroupSendStale(
                group_id,
                requested=message.group_membership_version,
                current=membership.membership_version,
            )
        return membership

    def _check_key_distributions(
        self, message: OutgoingMessage, members: dict[str, list[DeviceRecord]]
    ) -> None:
        """Every distribution must address a current device of a member, at the
        registration id it has now."""
        mismatches: list[DeviceListMismatch] = []
        by_user: dict[str, list[int]] = {}
        for index, ciphertext in enumerate(message.ciphertexts):
            user_id = ciphertext.device.user_id
            if user_id not in members:
                raise NotAParticipant(
                    f"ciphertexts[{index}] addresses user {user_id}, who is not a member of "
                    "the group"
                )
            by_user.setdefault(user_id, []).append(index)
        for user_id, indexes in by_user.items():
            current = {d.device_id: d for d in members[user_id]}
            addressed = [message.ciphertexts[i] for i in indexes]
            extra = tuple(
                sorted(c.device.device_id for c in addressed if c.device.device_id not in current)
            )
            stale = tuple(
                sorted(
                    c.device.device_id
                    for c in addressed
                    if c.device.device_id in current
                    and c.registration_id != current[c.device.device_id].registration_id
                )
            )
            if extra or stale:
                mismatches.append(
                    DeviceListMismatch(
                        user_id, (), extra, stale, device_check.summaries(members[user_id])
                    )
                )
        if mismatches:
            raise DeviceListMismatchError(mismatches)

    async def _distribute_keys(
        self, sender: DeviceAddress, message: OutgoingMessage, now: float, expire_time: float
    ) -> None:
        server_message_id = new_server_message_id()
        deliveries = tuple(
            Delivery(
                c.device,
                client_envelope(
                    sender,
                    message,
                    server_message_id=server_message_id,
                    type=EnvelopeType.SENDER_KEY_DISTRIBUTION,
                    content=c.content,
                    now=now,
                    expire_time=expire_time,
                ),
            )
            for c in message.ciphertexts
        )
        _, committed = await self._store.commit(
            PendingSend(
                sender,
                message.client_message_id + KEY_DISTRIBUTION_SUFFIX,
                server_message_id,
                now,
                expire_time,
                deliveries,
            )
        )
        await self._push(committed)

    def _envelope(
        self,
        sender: DeviceAddress,
        message: OutgoingMessage,
        server_message_id: str,
        now: float,
        expire_time: float,
    ) -> Envelope:
        return client_envelope(
            sender,
            message,
            server_message_id=server_message_id,
            type=EnvelopeType.SENDER_KEY_CIPHERTEXT,
            content=message.group_content,
            now=now,
            expire_time=expire_time,
        )

    async def _push(self, deliveries: Sequence[Delivery]) -> None:
        """Tells online devices, a bounded batch at a time (each batch is one route lookup
        and one publish per gateway), so a large fan-out never builds one huge message."""
        size = self._groups_config.fan_out_batch_size
        for start in range(0, len(deliveries), size):
            batch = deliveries[start : start + size]
            await self._bus.publish([inbox_event(d) for d in batch])

    async def _push_log_entry(
        self, envelope: Envelope, position: int, recipients: Sequence[DeviceAddress]
    ) -> None:
        # Inline whatever its size: the log is not an inbox a gateway could re-read.
        entry = dataclasses.replace(envelope, group_log_position=position)
        size = self._groups_config.fan_out_batch_size
        for start in range(0, len(recipients), size):
            await self._bus.publish(
                [InboxChanged(r, 0, entry) for r in recipients[start : start + size]]
            )
