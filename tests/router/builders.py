"""Domain services over the embedded stores, for tests that drive the router's domain
directly (without a server)."""

from __future__ import annotations

from chatconnect.groups.embedded import SqliteGroupStore
from chatconnect.model import Clock
from chatconnect.router.config import RouterConfig
from chatconnect.router.domain.group_reading import GroupReading
from chatconnect.router.group_log_embedded import SqliteGroupLog
from chatconnect.router.tally_inprocess import InProcessReceiptTally
from chatconnect.storage.sqlite import Database
from chatconnect.users.privacy_embedded import SqlitePrivacyStore


def embedded_group_reading(db: Database, clock: Clock) -> GroupReading:
    """Group log sync and group receipts on the embedded database."""
    return GroupReading(
        log=SqliteGroupLog(db),
        tally=InProcessReceiptTally(),
        groups=SqliteGroupStore(db),
        privacy=SqlitePrivacyStore(db),
        config=RouterConfig(),
        clock=clock,
    )
