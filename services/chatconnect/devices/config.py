"""Settings of the devices service (section [devices])."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.runtime.config import positive, setting


@dataclass(frozen=True)
class DevicesConfig:
    """Linked devices."""

    max_linked_devices: int = setting(
        8, "devices an account may link besides its primary device", check=positive
    )
    link_code_ttl_seconds: int = setting(
        300, "how long a link code (QR payload) can be approved", check=positive
    )
    max_link_wait_seconds: float = setting(
        30.0, "longest CompleteLink waits for the approval", check=positive
    )
    max_provisioning_message_bytes: int = setting(
        64 * 1024, "largest encrypted provisioning message", check=positive
    )
