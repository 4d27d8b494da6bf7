"""Settings of the presence service (section [presence])."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.runtime.config import positive, setting


@dataclass(frozen=True)
class PresenceConfig:
    """Online state, last seen, subscriptions and typing."""

    max_subscriptions: int = setting(
        500, "users one device's presence stream may follow", check=positive
    )
