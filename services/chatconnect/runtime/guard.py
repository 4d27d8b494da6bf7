"""Authentication at the gRPC edge: every protected RPC starts with `authenticate`."""

from __future__ import annotations

from typing import Any

import grpc

from chatconnect.model import DeviceAddress
from chatconnect.runtime.auth import Authenticator
from chatconnect.runtime.edge import bearer_token


async def authenticate(
    authenticator: Authenticator, context: grpc.aio.ServicerContext[Any, Any]
) -> DeviceAddress:
    """The device the call's bearer token belongs to, or NotAuthenticated."""
    claims = await authenticator.authenticate(bearer_token(context))
    return claims.device


def client_ip(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The peer address without port, for per-IP rate limits."""
    peer = context.peer() or ""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        host, _, _port = rest.rpartition(":")
        return host.strip("[]") or rest
    return peer
