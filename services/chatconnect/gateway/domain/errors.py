"""Errors of the gateway."""

from __future__ import annotations

from chatconnect.runtime.errors import ChatConnectError


class HelloMissing(ChatConnectError):
    """The first frame of a stream must be Hello."""


class FrameEmpty(ChatConnectError):
    """A frame had none of its fields set."""


class Shed(ChatConnectError):
    """The gateway refuses a new connection now; reconnect after the hint."""

    def __init__(self, reason: str, message: str, retry_after_seconds: float) -> None:
        super().__init__(message, metadata={"reason": reason})
        self.retry_after_seconds = retry_after_seconds
