"""Notices the server itself puts into inboxes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from chatconnect.devices.ports import DeviceDirectory
from chatconnect.model import (
    Clock,
    Conversation,
    DeviceAddress,
    EnvelopeType,
    Notice,
    NoticeType,
)
from chatconnect.router.config import RouterConfig
from chatconnect.router.domain.device_check import summaries
from chatconnect.router.domain.sending import Deliverer, server_send


class NoticeService:
    """Tells devices about changes they must act on."""

    def __init__(
        self,
        *,
        directory: DeviceDirectory,
        deliverer: Deliverer,
        config: RouterConfig,
        clock: Clock,
    ) -> None:
        self._directory = directory
        self._deliverer = deliverer
        self._config = config
        self._clock = clock

    async def device_list_changed(self, user_id: str) -> None:
        """Every device of `user_id` learns its account's current device list."""
        devices = await self._directory.list_devices(user_id)
        if not devices:
            return
        await self._deliverer.commit_and_push(
            server_send(
                (DeviceAddress(user_id, d.device_id) for d in devices),
                type=EnvelopeType.SERVER_NOTICE,
                sender=None,
                destination=Conversation(user_id=user_id),
                now=self._clock(),
                retention_seconds=self._config.retention_seconds,
                notice=Notice(NoticeType.DEVICE_LIST_CHANGED, user_id, summaries(devices)),
            )
        )

    async def own_account_changed(
        self,
        notice_type: NoticeType,
        user_ids: Sequence[str],
        *,
        except_device: DeviceAddress | None = None,
    ) -> None:
        """Every device of each account in `user_ids` but `except_device` (the one that made
        the change) learns that state of its own account changed (read markers,
        tombstones) and syncs it. One durable notice per device; callers pass bounded
        batches of accounts."""
        devices = await self._directory.list_devices_of(user_ids)
        now = self._clock()
        sends = []
        for user_id, records in devices.items():
            recipients = [DeviceAddress(user_id, d.device_id) for d in records]
            recipients = [r for r in recipients if r != except_device]
            if recipients:
                sends.append(
                    server_send(
                        recipients,
                        type=EnvelopeType.SERVER_NOTICE,
                        sender=None,
                        destination=Conversation(user_id=user_id),
                        now=now,
                        retention_seconds=self._config.retention_seconds,
                        notice=Notice(notice_type, user_id),
                    )
                )
        await asyncio.gather(*(self._deliverer.commit_and_push(send) for send in sends))
