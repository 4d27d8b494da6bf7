"""Settings of the presence service (section [presence])."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.runtime.config import ConfigError, positive, setting


@dataclass(frozen=True)
class PresenceConfig:
    """Online state, last seen, subscriptions and typing."""

    max_subscriptions: int = setting(
        500, "users one device's presence stream may follow", check=positive
    )
    max_typing_conversations: int = setting(
        20, "conversations one device's presence stream may receive typing for", check=positive
    )
    max_batch_users: int = setting(100, "users one GetPresence may ask for", check=positive)
    min_update_interval: float = setting(
        1.0,
        "seconds between two presence updates of one user on one stream (later states win)",
        check=positive,
    )
    group_typing_interval: float = setting(
        1.0, "seconds between two GroupTyping events of one group on one stream", check=positive
    )
    last_seen_write_interval: float = setting(
        60.0,
        "seconds between two durable last-seen writes of one online user",
        check=positive,
    )
    device_lease_seconds: float = setting(
        10.0,
        "a connected device stays online this long after its holder's last heartbeat "
        "(how fast a crashed process's devices go offline)",
        check=positive,
    )
    device_heartbeat_seconds: float = setting(
        3.0,
        "how often a process renews the leases of the streams it holds (below the lease)",
        check=positive,
    )
    typing_refresh_interval: float = setting(
        3.0, "clients resend a typing state at most this often while typing", check=positive
    )
    typing_ttl: float = setting(
        6.0, "seconds after which receivers drop a typing indicator not refreshed", check=positive
    )
    typing_events_per_minute: int = setting(
        30, "typing events one device may send per minute per conversation", check=positive
    )
    typing_burst: int = setting(
        10, "typing events one device may send at once in one conversation", check=positive
    )
    max_typing_names: int = setting(3, "typing user ids one GroupTyping names", check=positive)
    presence_updates_per_minute: int = setting(
        60, "UpdatePresence calls one device may make per minute", check=positive
    )
    presence_update_burst: int = setting(
        10, "UpdatePresence calls one device may make at once", check=positive
    )
    presence_reads_per_minute: int = setting(
        120, "GetPresence calls one device may make per minute", check=positive
    )
    presence_read_burst: int = setting(
        20, "GetPresence calls one device may make at once", check=positive
    )
    request_id_ttl_seconds: float = setting(
        300.0, "how long a mutating call's request_id is remembered for repeats", check=positive
    )
    subscriber_queue: int = setting(
        256, "events buffered per presence stream before the slowest are dropped", check=positive
    )

    def __post_init__(self) -> None:
        # A lease renewed less often than it lasts would flap every device offline.
        if self.device_heartbeat_seconds >= self.device_lease_seconds:
            raise ConfigError(
                "presence.device_heartbeat_seconds must be below presence.device_lease_seconds; "
                f"got {self.device_heartbeat_seconds} and {self.device_lease_seconds}"
            )
        if self.typing_refresh_interval >= self.typing_ttl:
            raise ConfigError(
                "presence.typing_refresh_interval must be below presence.typing_ttl; "
                f"got {self.typing_refresh_interval} and {self.typing_ttl}"
            )
