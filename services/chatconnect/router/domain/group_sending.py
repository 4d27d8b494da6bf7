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

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

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
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.runtime.logging import get_logger

log = get_logger("router.group_sending")

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
        if self.reads_from_log(membership):
            return await self._send_to_log(sender, message, server_message_id, membership)
        members = await self._directory.list_devices_of(membership.member_ids)
        self._check_key_distributions(message, membership, members)
        now, expire_time = self._lifetime()
        envelope = self._envelope(sender, message, server_message_id, now, expire_time)
        result, committed = await self._commit(
            sender,
            message,
            server_message_id,
            membership,
            (now, expire_time),
            tuple(Delivery(r, envelope) for r in _recipients(sender, members)),
        )
        await self._push(committed)
        return result

    async def _send_to_log(
        self,
        sender: DeviceAddress,
        message: OutgoingMessage,
        server_message_id: str,
        membership: GroupMembership,
    ) -> SendResult:
        """Stores the message once in the group log, then pushes it to the members'
        connected devices."""
        if message.ciphertexts:
            # Only the users a distribution addresses need checking, not the whole group.
            addressed = dict.fromkeys(c.device.user_id for c in message.ciphertexts)
            listed = await self._directory.list_devices_of(list(addressed))
            self._check_key_distributions(message, membership, listed)
        # Every member's devices are needed for the push only, not for the writes: they
        # are read while the message is made durable (a row per member, the slowest read
        # of the send).
        reading = asyncio.ensure_future(self._directory.list_devices_of(membership.member_ids))
        try:
            outcome = await self._write_to_log(sender, message, server_message_id, membership)
        except BaseException:
            _abandon(reading)
            raise
        result, entry = outcome
        if entry is None:
            _abandon(reading)
            return result
        try:
            members = await reading
        except StoreUnavailable as exc:
            # The message is durable in the log and devices sync it by cursor; only its
            # push is lost, so the sender is still told it was sent.
            log.warning("member devices unreadable; push skipped", error=str(exc))
            return result
        await self._push_log_entry(entry, _recipients(sender, members))
        return result

    async def _write_to_log(
        self,
        sender: DeviceAddress,
        message: OutgoingMessage,
        server_message_id: str,
        membership: GroupMembership,
    ) -> tuple[SendResult, Envelope | None]:
        """The send's durable writes: its key distributions, its receipt record, its
        idempotency record (and origin, for deletes) and its log entry. Returns the result
        and the entry to push, None when the send repeats an accepted one."""
        now, expire_time = self._lifetime()
        result, _ = await self._commit(
            sender, message, server_message_id, membership, (now, expire_time), ()
        )
        if result.duplicate:
            return await self.complete(sender, message, result), None
        envelope = self._envelope(sender, message, server_message_id, now, expire_time)
        position = await self._log.append(message.destination.group_id, envelope)
        return result, dataclasses.replace(envelope, group_log_position=position)

    async def _commit(
        self,
        sender: DeviceAddress,
        message: OutgoingMessage,
        server_message_id: str,
        membership: GroupMembership,
        lifetime: tuple[float, float],
        deliveries: tuple[Delivery, ...],
    ) -> tuple[SendResult, Sequence[Delivery]]:
        """The send's key distributions, its receipt record, then its one idempotent
        commit, with `deliveries` into member inboxes (none for a log group's message)."""
        now, expire_time = lifetime
        if message.ciphertexts:
            await self._distribute_keys(sender, message, now, expire_time)
        # Recorded before the idempotency record: a retry finds the record of every
        # accepted send, and `complete` relies on it to rebuild a missing log entry.
        await self._record(message, server_message_id, sender, membership, now, expire_time)
        return await self._store.commit(
            PendingSend(
                sender,
                message.client_message_id,
                server_message_id,
                now,
                expire_time,
                deliveries,
                destination=None if deliveries else message.destination,
            )
        )

    def _lifetime(self) -> tuple[float, float]:
        """Now, and when a message sent now expires."""
        now = self._clock()
        return now, now + self._config.retention_seconds

    async def _record(
        self,
        message: OutgoingMessage,
        server_message_id: str,
        sender: DeviceAddress,
        membership: GroupMembership,
        now: float,
        expire_time: float,
    ) -> None:
        """Records the message for its receipts (how many members it was sent to)."""
        await self._log.record(
            GroupMessage(
                group_id=message.destination.group_id,
                server_message_id=server_message_id,
                sender=sender,
                server_time=now,
                expire_time=expire_time,
                recipient_count=len(membership.roles) - 1,
            )
        )

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
        self,
        message: OutgoingMessage,
        membership: GroupMembership,
        members: dict[str, list[DeviceRecord]],
    ) -> None:
        """Every distribution must address a current device of a member, at the
        registration id it has now (`members`: the devices of at least the members
        addressed)."""
        mismatches: list[DeviceListMismatch] = []
        by_user: dict[str, list[int]] = {}
        for index, ciphertext in enumerate(message.ciphertexts):
            user_id = ciphertext.device.user_id
            if membership.role_of(user_id) is None:
                raise NotAParticipant(
                    f"ciphertexts[{index}] addresses user {user_id}, who is not a member of "
                    "the group"
                )
            by_user.setdefault(user_id, []).append(index)
        for user_id, indexes in by_user.items():
            devices = members.get(user_id, [])
            current = {d.device_id: d for d in devices}
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
                    DeviceListMismatch(user_id, (), extra, stale, device_check.summaries(devices))
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

    async def _push_log_entry(self, entry: Envelope, recipients: Sequence[DeviceAddress]) -> None:
        # Inline whatever its size: the log is not an inbox a gateway could re-read.
        size = self._groups_config.fan_out_batch_size
        for start in range(0, len(recipients), size):
            await self._bus.publish(
                [InboxChanged(r, 0, entry) for r in recipients[start : start + size]]
            )


def _recipients(
    sender: DeviceAddress, members: dict[str, list[DeviceRecord]]
) -> list[DeviceAddress]:
    """Every member device but the sending one."""
    return [
        address
        for user_id, devices in members.items()
        for device in devices
        if (address := DeviceAddress(user_id, device.device_id)) != sender
    ]


def _abandon(task: asyncio.Future[Any]) -> None:
    """Stops a read whose result is no longer wanted, and consumes its error if it had
    one (an error never retrieved is logged as a bug)."""
    task.cancel()
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
