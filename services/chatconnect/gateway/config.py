"""Settings of the gateway (section [gateway])."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.runtime.config import positive, setting


@dataclass(frozen=True)
class GatewayConfig:
    """Client connections."""

    delivery_window: int = setting(
        100, "unacknowledged envelopes in flight per connection, by default", check=positive
    )
    max_delivery_window: int = setting(500, "largest window a client may ask for", check=positive)
    max_connections: int = setting(
        100_000,
        "connections one gateway process holds before it sheds new ones",
        check=positive,
    )
    max_handshakes: int = setting(
        256,
        "connections one gateway process sets up at once (Hello to Welcome) before it "
        "sheds new ones with a retry hint",
        check=positive,
    )
    connects_per_second: float = setting(
        2_000.0, "new connections one gateway process admits per second", check=positive
    )
    shed_retry_seconds: float = setting(
        2.0, "base retry hint for shed connections (jitter is added)", check=positive
    )
    ping_interval_seconds: float = setting(
        30.0,
        "clients ping at least this often; idle streams close after twice it",
        check=positive,
    )
    hello_timeout_seconds: float = setting(
        10.0, "how long a new stream may take to send Hello", check=positive
    )
    max_pending_frames: int = setting(
        1_000,
        "client frames buffered per connection before it is told to slow down",
        check=positive,
    )
