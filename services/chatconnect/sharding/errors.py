"""Errors of the epoch fence."""

from __future__ import annotations

from chatconnect.runtime.errors import ChatConnectError


class StaleShardEpoch(ChatConnectError):
    """The request was routed by a shard map older than the one in force."""

    def __init__(self, request_epoch: int, current_epoch: int) -> None:
        super().__init__(
            f"the request carries shard-map epoch {request_epoch}, but epoch {current_epoch} "
            "is in force: adopt it and retry",
            metadata={"request_epoch": str(request_epoch), "current_epoch": str(current_epoch)},
        )
        self.request_epoch = request_epoch
        self.current_epoch = current_epoch
        self.request_epoch = request_epoch
        self.current_epoch = current_epoch


class ShardMapBehind(ChatConnectError):
    """The request carries a newer epoch than this process has loaded yet."""

    def __init__(self, request_epoch: int, current_epoch: int) -> None:
        super().__init__(
            f"the request carries shard-map epoch {request_epoch}; this server still holds "
            f"{current_epoch} and is loading the new map: retry shortly",
            metadata={"request_epoch": str(request_epoch), "current_epoch": str(current_epoch)},
        )
        # The map file is re-checked every `sharding.reload_seconds` (2 s by default).
        self.retry_after_seconds = 1.0
