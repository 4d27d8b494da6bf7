"""What members do with group messages after the send: sync a large group's log by
cursor, and report delivered / read / played, which are tallied per group instead of sent
to the sender one receipt per member per message."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence

from chatconnect.groups.domain.errors import GroupNotFound, NotAMember
from chatconnect.groups.domain.models import GroupMembership
from chatconnect.groups.ports import GroupDirectory
from chatconnect.model import Clock, DeviceAddress, Envelope, ReceiptType
from chatconnect.router.config import RouterConfig
from chatconnect.router.domain.errors import (
    MessageNotFound,
    NotMessageSender,
)
from chatconnect.router.domain.models import GroupMessage, ReceiptCounts
from chatconnect.router.ports import GroupLog, ReceiptTally
from chatconnect.runtime.errors import FieldMissing
from chatconnect.users.ports import PrivacyDirectory


class GroupReading:
    """Group log sync, group receipts and their summaries."""

    def __init__(
        self,
        *,
        log: GroupLog,
        tally: ReceiptTally,
        groups: GroupDirectory,
        privacy: PrivacyDirectory,
        config: RouterConfig,
        clock: Clock,
    ) -> None:
        self._log = log
        self._tally = tally
        self._groups = groups
        self._privacy = privacy
        self._config = config
        self._clock = clock

    async def sync(
        self, reader: DeviceAddress, group_id: str, *, after_position: int, limit: int
    ) -> tuple[list[Envelope], int]:
        """Up to `limit` log entries after `after_position` that the reader may see (sent
        while it was a member), and the log's head. Counts them as delivered."""
        membership = await self._membership_of(reader.user_id, group_id)
        joined = membership.joined_at.get(reader.user_id, 0.0)
        visible: list[Envelope] = []
        cursor = after_position
        now = self._clock()
        # Entries from before the reader joined are skipped; keep reading past them so a
        # page is never empty while the log has more for the reader.
        while len(visible) < limit:
            page = await self._log.read(group_id, after_position=cursor, limit=limit, now=now)
            if not page:
                break
            visible.extend(e for e in page if e.server_time >= joined)
            cursor = page[-1].group_log_position
        visible = visible[:limit]
        head = await self._log.head(group_id)
        if visible:
            await self._tally.advance(
                group_id, ReceiptType.DELIVERED, reader.user_id, visible[-1].server_time
            )
        return visible, head

    async def acknowledged(
        self, reader: DeviceAddress, messages: Sequence[tuple[str, float]]
    ) -> None:
        """Group messages a device acknowledged, as (group id, server time): delivered
        watermarks."""
        newest: dict[str, float] = {}
        for group_id, server_time in messages:
            newest[group_id] = max(newest.get(group_id, 0.0), server_time)
        for group_id, through in newest.items():
            await self._tally.advance(group_id, ReceiptType.DELIVERED, reader.user_id, through)

    async def receipts(
        self, reader: DeviceAddress, receipt_type: ReceiptType, messages: Sequence[tuple[str, str]]
    ) -> None:
        """READ or PLAYED receipts for group messages, as (group id, server message id):
        READ moves the reader's read (and delivered) watermark to the newest of them;
        PLAYED counts each message."""
        by_group: dict[str, list[str]] = defaultdict(list)
        for group_id, server_message_id in messages:
            by_group[group_id].append(server_message_id)
        for group_id, ids in by_group.items():
            await self._membership_of(reader.user_id, group_id)
            found = await asyncio.gather(*(self._log.find(group_id, i) for i in ids))
            known = [m for m in found if m is not None]
            if not known:
                continue
            if receipt_type == ReceiptType.PLAYED:
                for message in known:
                    await self._tally.mark_played(
                        group_id, message.server_message_id, reader.user_id
                    )
                continue
            through = max(m.server_time for m in known)
            if await self._sends_read_receipts(reader.user_id):
                await self._tally.advance(group_id, ReceiptType.READ, reader.user_id, through)
            # Reading implies the message was delivered, whatever the privacy setting.
            await self._tally.advance(group_id, ReceiptType.DELIVERED, reader.user_id, through)

    async def _sends_read_receipts(self, user_id: str) -> bool:
        """Members who turned read receipts off are never counted as readers."""
        settings = (await self._privacy.privacy_settings([user_id])).get(user_id)
        return settings is None or settings.read_receipts

    async def summary(
        self, caller: DeviceAddress, group_id: str, server_message_id: str
    ) -> tuple[GroupMessage, ReceiptCounts]:
        """The counts of one of the caller's group messages."""
        if not server_message_id:
            raise FieldMissing("server_message_id")
        await self._membership_of(caller.user_id, group_id)
        message = await self._log.find(group_id, server_message_id)
        if message is None:
            raise MessageNotFound(f"group {group_id} has no message {server_message_id}")
        if message.sender.user_id != caller.user_id:
            raise NotMessageSender("only the sender of a message sees its receipt summary")
        return message, await self._tally.counts(message)

    async def _membership_of(self, user_id: str, group_id: str) -> GroupMembership:
        if not group_id:
            raise FieldMissing("group_id")
        membership = await self._groups.membership(group_id)
        if membership is None:
            raise GroupNotFound(f"no group has id {group_id}")
        if membership.role_of(user_id) is None:
            raise NotAMember(f"you are not a member of group {group_id}")
        return membership
