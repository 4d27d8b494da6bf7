"""Users' device lists, kept in memory until a write changes them.

Every 1:1 message reads two device lists (the recipient's and the sender's, to check the
message addresses every device) and its delivery receipt reads one more. A device list
changes rarely (a device linked or unlinked, an account registered again, a device's
last-seen time on connecting), so the embedded store keeps them here and forgets a user's
list when the database tells it a committed write changed that user's devices
(storage/sqlite_watch.py). It serves one process: with server.processes above 1 there is
no cache, since the other processes' writes would not be told.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from chatconnect.devices.domain.models import DeviceRecord


class DeviceListCache:
    """The device lists of the `capacity` users most recently read."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._lists: OrderedDict[str, tuple[DeviceRecord, ...]] = OrderedDict()
        self._changes = 0
        """How many change reports have come in: a read that a report overtook may hold
        rows from before the change, and is not kept."""

    def __len__(self) -> int:
        return len(self._lists)

    def get(self, user_id: str) -> list[DeviceRecord] | None:
        """The kept list (a copy), or None when it is not kept."""
        kept = self._lists.get(user_id)
        if kept is None:
            return None
        self._lists.move_to_end(user_id)
        return list(kept)

    def mark(self) -> int:
        """Taken before reading the store; `keep` needs it."""
        return self._changes

    def keep(self, lists: dict[str, list[DeviceRecord]], *, read_at: int) -> None:
        """Keeps lists read from the store, unless a change was reported since `read_at`."""
        if read_at != self._changes or self._capacity == 0:
            return
        for user_id, devices in lists.items():
            self._lists[user_id] = tuple(devices)
            self._lists.move_to_end(user_id)
        while len(self._lists) > self._capacity:
            self._lists.popitem(last=False)

    def changed(self, user_ids: Iterable[str]) -> None:
        """Committed writes changed these users' devices."""
        self._changes += 1
        for user_id in user_ids:
            self._lists.pop(user_id, None)
