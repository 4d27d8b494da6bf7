"""The device-list check: a send must address exactly the current devices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from chatconnect.devices.domain.models import DeviceRecord
from chatconnect.model import DeviceSummary
from chatconnect.router.domain.models import DeviceCiphertext, DeviceListMismatch


def summaries(devices: Iterable[DeviceRecord]) -> tuple[DeviceSummary, ...]:
    """The directory view of devices."""
    return tuple(
        DeviceSummary(d.device_id, d.registration_id, d.kind, d.created_at) for d in devices
    )


def compare(
    user_id: str,
    current: Sequence[DeviceRecord],
    addressed: Sequence[DeviceCiphertext],
    *,
    excluded_device: int | None = None,
) -> DeviceListMismatch | None:
    """How `addressed` differs from `current` (minus `excluded_device`), or None."""
    expected = {d.device_id: d for d in current if d.device_id != excluded_device}
    given = {c.device.device_id: c for c in addressed}
    missing = tuple(sorted(set(expected) - set(given)))
    extra = tuple(sorted(set(given) - set(expected)))
    stale = tuple(
        sorted(
            device_id
            for device_id, ciphertext in given.items()
            if device_id in expected
            and ciphertext.registration_id != expected[device_id].registration_id
        )
    )
    if not (missing or extra or stale):
        return None
    return DeviceListMismatch(user_id, missing, extra, stale, summaries(current))
