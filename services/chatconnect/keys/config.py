"""Settings of the keys service (section [keys])."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.runtime.config import positive, setting


@dataclass(frozen=True)
class KeysConfig:
    """The prekey directory."""

    max_prekeys_per_upload: int = setting(
        100, "one-time prekeys accepted in one upload", check=positive
    )
    max_prekeys_stored: int = setting(1000, "one-time prekeys kept per device", check=positive)
    low_prekey_threshold: int = setting(
        10,
        "below this many one-time prekeys the device gets a PREKEYS_LOW notice",
        check=positive,
    )
    bundle_fetches_per_minute: int = setting(
        120,
        "prekey bundle fetches one device may make per minute (stops prekey draining)",
        check=positive,
    )
