"""Errors of the devices service."""

from __future__ import annotations

from chatconnect.runtime.errors import ChatConnectError, LimitExceeded


class LinkCodeNotFound(ChatConnectError):
    """No pending link has this code."""


class LinkNotFound(ChatConnectError):
    """No pending link has this secret."""


class LinkCodeExpired(ChatConnectError):
    """The link code is too old; show a new QR code."""


class LinkAlreadyApproved(ChatConnectError):
    """Another approval already used this link code."""


class LinkNotApproved(ChatConnectError):
    """The link was not approved before the wait ended; call CompleteLink again."""


class DeviceLimitReached(LimitExceeded):
    """The account already has devices.max_linked_devices linked devices."""


class NotPrimaryDevice(ChatConnectError):
    """Only the primary device may unlink other devices."""
