"""Notices the server itself puts into inboxes."""

from __future__ import annotations

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
