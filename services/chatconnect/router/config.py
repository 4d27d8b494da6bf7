"""Settings of the router (section [router])."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.runtime.config import positive, setting


@dataclass(frozen=True)
class RouterConfig:
    """The send path and device inboxes."""

    max_envelope_bytes: int = setting(
        256 * 1024, "largest ciphertext for one device", check=positive
    )
    max_devices_per_send: int = setting(
        64, "devices one 1:1 send may address (recipient's and sender's own)", check=positive
    )
    max_client_message_id_length: int = setting(64, "longest client message id", check=positive)
    retention_seconds: int = setting(
        30 * 24 * 3600,
        "how long an unacknowledged envelope is kept; later it becomes an InboxGap",
        check=positive,
    )
    sync_page_size: int = setting(100, "inbox items per page by default", check=positive)
    max_sync_page_size: int = setting(500, "most inbox items in one page", check=positive)
    max_ids_per_ack: int = setting(500, "ids one acknowledgement may carry", check=positive)
    max_receipt_messages: int = setting(
        500, "messages one receipt request may cover", check=positive
    )
    receipt_batch_max: int = setting(
        512,
        "group receipt watermarks written to Redis in one pipeline (those that arrive "
        "together are written together)",
        check=positive,
    )
    sends_per_second: float = setting(
        50.0, "sustained sends one device may make per second", check=positive
    )
    send_burst: int = setting(200, "sends one device may make in a burst", check=positive)
    expiry_sweep_seconds: float = setting(
        60.0, "how often expired envelopes are turned into gaps (embedded store)", check=positive
    )
