"""How tombstones are read back, shared by both sync store adapters (their column names
agree)."""

from __future__ import annotations

from chatconnect.devices.domain.models import DeleteScope, Tombstone, conversation_from_key
from chatconnect.model import DeviceAddress
from chatconnect.router.records import RowLike


def tombstone_from_row(row: RowLike) -> Tombstone:
    """The tombstone stored in a row of either store."""
    return Tombstone(
        user_id=row["user_id"],
        conversation=conversation_from_key(row["conversation"]),
        server_message_id=row["server_message_id"],
        scope=DeleteScope(row["scope"]),
        delete_time=row["delete_time"],
        deleted_by=DeviceAddress(row["deleted_by_user_id"], row["deleted_by_device_id"]),
        expires_at=row["expires_at"],
    )
