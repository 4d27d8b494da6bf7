"""Settings of the devices service (section [devices])."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.runtime.config import positive, setting


@dataclass(frozen=True)
class DevicesConfig:
    """Linked devices, and the read markers and deletions they keep in sync."""

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
    link_begins_per_minute: float = setting(
        10.0, "BeginLink calls one client IP may make per minute (also the burst)", check=positive
    )
    max_markers_per_request: int = setting(
        100, "read markers one UpdateReadMarkers request may carry", check=positive
    )
    marker_page_size: int = setting(
        100, "read markers per ListReadMarkers page by default", check=positive
    )
    max_marker_page_size: int = setting(
        500, "most read markers in one ListReadMarkers page", check=positive
    )
    marker_clock_skew_seconds: float = setting(
        300.0,
        "how far past the server clock a read marker's time may be (markers name messages "
        "the server timed; a marker from the future would stop every later one)",
        check=positive,
    )
    max_messages_per_delete: int = setting(
        100, "messages one DeleteMessages request may name", check=positive
    )
    tombstone_page_size: int = setting(
        100, "tombstones per ListTombstones page by default", check=positive
    )
    max_tombstone_page_size: int = setting(
        500, "most tombstones in one ListTombstones page", check=positive
    )
    delete_for_everyone_window_seconds: int = setting(
        48 * 3600,
        "how long after sending a sender may delete a message for everyone (group admins "
        "may delete any group message while it is retained)",
        check=positive,
    )
    sync_batch_size: int = setting(
        256,
        "accounts whose tombstones are written, and whose devices are told, per batch when a "
        "group message is deleted for everyone",
        check=positive,
    )
    device_list_cache_users: int = setting(
        50_000,
        "users whose device lists the embedded store keeps in memory until a write changes "
        "them (every 1:1 message reads two, its receipt one); kept only with "
        "server.processes=1, since other processes' writes would not reach it; 0 turns "
        "this off",
        check=lambda value: None if value >= 0 else "must be 0 or more",
    )
    max_id_length: int = setting(
        128, "longest user, group or server message id a marker or deletion may name",
        check=positive,
    )
