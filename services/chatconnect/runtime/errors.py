"""The base of every domain error.

Domain code raises subclasses of `ChatConnectError` and never touches gRPC. Each service's
servicer maps its error classes to a status code and an ErrorInfo reason in one table
(`chatconnect.runtime.edge.ErrorTable`).
"""

from __future__ import annotations

from collections.abc import Mapping


class ChatConnectError(Exception):
    """Something the caller did or asked for cannot be done; the subclass says what."""

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})


class FieldMissing(ChatConnectError):
    """A required field of the request is empty."""

    def __init__(self, field_name: str) -> None:
        super().__init__(f"{field_name} is required", metadata={"field": field_name})


class FieldInvalid(ChatConnectError):
    """A field of the request has a value the server cannot accept."""

    def __init__(self, field_name: str, why: str) -> None:
        super().__init__(f"{field_name}: {why}", metadata={"field": field_name})


class RequestIdMissing(FieldMissing):
    """A mutating call came without its idempotency key (request_id)."""

    def __init__(self) -> None:
        super().__init__("request_id")


class LimitExceeded(ChatConnectError):
    """A request is over a configured size or count limit."""

    def __init__(self, what: str, *, setting: str, limit: int, actual: int) -> None:
        super().__init__(
            f"{what}: {actual} exceeds the limit of {limit} (setting {setting})",
            metadata={"setting": setting, "limit": str(limit), "actual": str(actual)},
        )
        self.setting = setting
        self.limit = limit
        self.actual = actual


class RateLimited(ChatConnectError):
    """The caller is over a rate limit and must wait before trying again."""

    def __init__(self, scope: str, retry_after_seconds: float) -> None:
        super().__init__(
            f"too many requests for this {scope}; retry in {retry_after_seconds:.1f}s",
            metadata={"scope": scope},
        )
        self.scope = scope
        self.retry_after_seconds = retry_after_seconds


class StoreUnavailable(ChatConnectError):
    """The durable store did not answer; nothing was acknowledged, retrying is safe."""

    RETRY_AFTER_SECONDS = 1.0
    """The hint sent with UNAVAILABLE: a restarted node or a new coordinator is usually
    back within a second, and clients add their own jitter and backoff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.retry_after_seconds = self.RETRY_AFTER_SECONDS


class NotAuthenticated(ChatConnectError):
    """The request carries no valid device credential."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotServed(ChatConnectError):
    """The RPC has a contract, but this release does not serve it yet."""


class UserNotFound(ChatConnectError):
    """No account has this user id."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"no user {user_id}", metadata={"user_id": user_id})


class DeviceNotFound(ChatConnectError):
    """The account has no such device."""

    def __init__(self, user_id: str, device_id: int) -> None:
        super().__init__(
            f"user {user_id} has no device {device_id}",
            metadata={"user_id": user_id, "device_id": str(device_id)},
        )
