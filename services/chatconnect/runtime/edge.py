"""The gRPC edge: domain errors to statuses, tracing and metrics for every RPC.

Each servicer declares one `ErrorTable` that maps its domain error classes to a canonical
status code and an ErrorInfo reason, and wraps every RPC with `unary` or `stream`. An
error nobody mapped is logged with its traceback and returned as INTERNAL: the server
never crashes on a request and never leaks internals to the caller.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry import propagate, trace

from chatconnect.common.v1 import common_pb2
from chatconnect.errordetails.v1 import errordetails_pb2
from chatconnect.runtime import errors
from chatconnect.runtime.logging import get_logger
from chatconnect.runtime.telemetry import record_rpc, tracer

log = get_logger("edge")

DetailBuilder = Callable[[Any], list[Message]]


@dataclass(frozen=True)
class WireError:
    """How one domain error class appears on the wire."""

    code: grpc.StatusCode
    reason: str
    details: DetailBuilder | None = None


def limit_details(exc: errors.LimitExceeded) -> list[Message]:
    """Details for any LimitExceeded: which setting, the limit, the actual value."""
    return [errordetails_pb2.LimitExceeded(setting=exc.setting, limit=exc.limit, actual=exc.actual)]


def _delay(seconds: float) -> duration_pb2.Duration:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(seconds * 1e9))
    return delay


def _retry_details(exc: errors.RateLimited) -> list[Message]:
    delay = _delay(exc.retry_after_seconds)
    return [
        errordetails_pb2.RateLimited(scope=exc.scope, retry_after=delay),
        error_details_pb2.RetryInfo(retry_delay=delay),
    ]


class ClearsByItself(Protocol):
    """An error that goes away on its own; retrying the same request later is right."""

    retry_after_seconds: float


def retry_info_details(exc: ClearsByItself) -> list[Message]:
    """RetryInfo carrying the error's own hint."""
    return [error_details_pb2.RetryInfo(retry_delay=_delay(exc.retry_after_seconds))]


def _field_details(exc: errors.ChatConnectError) -> list[Message]:
    violation = error_details_pb2.BadRequest.FieldViolation(
        field=exc.metadata.get("field", ""), description=exc.message
    )
    return [error_details_pb2.BadRequest(field_violations=[violation])]


COMMON_ERRORS: dict[type[errors.ChatConnectError], WireError] = {
    errors.FieldMissing: WireError(
        grpc.StatusCode.INVALID_ARGUMENT, "FIELD_MISSING", _field_details
    ),
    errors.RequestIdMissing: WireError(
        grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_MISSING", _field_details
    ),
    errors.FieldInvalid: WireError(
        grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID", _field_details
    ),
    errors.LimitExceeded: WireError(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_EXCEEDED", limit_details
    ),
    errors.RateLimited: WireError(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED", _retry_details
    ),
    errors.StoreUnavailable: WireError(
        grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE", retry_info_details
    ),
    errors.UserNotFound: WireError(grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND"),
    errors.NotServed: WireError(grpc.StatusCode.UNIMPLEMENTED, "NOT_SERVED_YET"),
    errors.DeviceNotFound: WireError(grpc.StatusCode.NOT_FOUND, "DEVICE_NOT_FOUND"),
}


class ErrorTable:
    """One service's mapping from domain errors to gRPC statuses."""

    def __init__(
        self, domain: str, entries: Mapping[type[errors.ChatConnectError], WireError]
    ) -> None:
        self.domain = domain
        self._entries = {**COMMON_ERRORS, **entries}

    def lookup(self, exc: errors.ChatConnectError) -> WireError:
        """The mapping for `exc`, by its class or nearest mapped base class."""
        if isinstance(exc, errors.NotAuthenticated):
            return WireError(grpc.StatusCode.UNAUTHENTICATED, exc.reason)
        for cls in type(exc).__mro__:
            if cls in self._entries:
                return self._entries[cls]
        return WireError(grpc.StatusCode.INTERNAL, "UNMAPPED_ERROR")

    def reason(self, exc: errors.ChatConnectError) -> str:
        """The ErrorInfo reason of `exc`, with a subclass's own reason first."""
        mapping = self.lookup(exc)
        override = exc.metadata.get("reason")
        return override or mapping.reason

    def to_status(self, exc: errors.ChatConnectError) -> status_pb2.Status:
        """A google.rpc.Status with ErrorInfo and the error's details."""
        mapping = self.lookup(exc)
        info = error_details_pb2.ErrorInfo(
            reason=self.reason(exc),
            domain=self.domain,
            metadata={k: v for k, v in exc.metadata.items() if k != "reason"},
        )
        details: list[Message] = [info, *(mapping.details(exc) if mapping.details else [])]
        packed = []
        for detail in details:
            holder = any_pb2.Any()
            holder.Pack(detail)
            packed.append(holder)
        return status_pb2.Status(code=mapping.code.value[0], message=exc.message, details=packed)

    def to_error_frame(self, exc: errors.ChatConnectError) -> common_pb2.Error:
        """The same error as a chatconnect.common.v1.Error, for stream frames."""
        status = self.to_status(exc)
        info = self.lookup(exc)
        return common_pb2.Error(
            code=status.code,
            message=status.message,
            reason=self.reason(exc),
            domain=self.domain,
            metadata={k: v for k, v in exc.metadata.items() if k != "reason"},
            details=list(status.details)[1:] if info.details else [],
        )


def internal_error_frame(domain: str) -> common_pb2.Error:
    """The frame for an error the server did not expect."""
    return common_pb2.Error(
        code=code_pb2.INTERNAL,
        message="internal error; it has been logged",
        reason="INTERNAL",
        domain=domain,
    )


Req = TypeVar("Req")
Resp = TypeVar("Resp")
Self_ = TypeVar("Self_")


async def _abort(context: grpc.aio.ServicerContext[Any, Any], status: status_pb2.Status) -> None:
    converted = rpc_status.to_status(status)
    await context.abort(converted.code, converted.details, converted.trailing_metadata)


def _incoming_context(context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    carrier = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
    return propagate.extract(carrier)


def unary(
    table: ErrorTable, method: str
) -> Callable[
    [Callable[[Self_, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]]],
    Callable[[Self_, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]],
]:
    """Wraps a unary RPC: span, metrics, and domain errors turned into rich statuses."""

    def decorate(
        handler: Callable[[Self_, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]],
    ) -> Callable[[Self_, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]]:
        @functools.wraps(handler)
        async def wrapper(
            self: Self_, request: Req, context: grpc.aio.ServicerContext[Req, Resp]
        ) -> Resp:
            start = time.perf_counter()
            code = "OK"
            with tracer().start_as_current_span(
                method, context=_incoming_context(context), kind=trace.SpanKind.SERVER
            ) as span:
                try:
                    return await handler(self, request, context)
                except errors.ChatConnectError as exc:
                    status = table.to_status(exc)
                    code = grpc.StatusCode(_code_tuple(status.code)).name
                    span.set_attribute("chatconnect.error.reason", table.reason(exc))
                    await _abort(context, status)
                    raise AssertionError("unreachable: abort raises") from exc
                except Exception as exc:
                    if _is_abort(exc):
                        code = "ABORTED_BY_HANDLER"
                        raise
                    code = "INTERNAL"
                    log.exception("rpc failed", method=method)
                    span.record_exception(exc)
                    await context.abort(
                        grpc.StatusCode.INTERNAL, "internal error; it has been logged"
                    )
                    raise AssertionError("unreachable: abort raises") from exc
                finally:
                    record_rpc(method, code, time.perf_counter() - start)

        return wrapper

    return decorate


def stream(
    table: ErrorTable, method: str
) -> Callable[
    [Callable[[Self_, Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Resp]]],
    Callable[[Self_, Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Resp]],
]:
    """Wraps a streaming RPC the same way as `unary`, except that its span is not made
    the current one: a stream lives for hours, so what happens on it is traced on its
    own rather than under one endless span; and a stream whose client went away may be
    closed from another task, where a current span could not be detached."""

    def decorate(
        handler: Callable[[Self_, Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Resp]],
    ) -> Callable[[Self_, Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Resp]]:
        @functools.wraps(handler)
        async def wrapper(
            self: Self_, request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Resp]:
            start = time.perf_counter()
            code = "OK"
            span = tracer().start_span(
                method, context=_incoming_context(context), kind=trace.SpanKind.SERVER
            )
            try:
                async for item in handler(self, request, context):
                    yield item
            except errors.ChatConnectError as exc:
                status = table.to_status(exc)
                code = grpc.StatusCode(_code_tuple(status.code)).name
                span.set_attribute("chatconnect.error.reason", table.reason(exc))
                await _abort(context, status)
            except Exception as exc:
                if _is_abort(exc):
                    raise
                code = "INTERNAL"
                log.exception("stream failed", method=method)
                span.record_exception(exc)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error; it has been logged")
            finally:
                record_rpc(method, code, time.perf_counter() - start)
                span.end()

        return wrapper

    return decorate


def _code_tuple(number: int) -> tuple[int, str]:
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code.value
    return grpc.StatusCode.UNKNOWN.value


def _is_abort(exc: BaseException) -> bool:
    # grpc.aio raises AbortError (a private class) out of context.abort; let it pass.
    return type(exc).__name__ == "AbortError"


def bearer_token(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The token of the `authorization: Bearer <token>` metadata, or ""."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


def not_served(table: ErrorTable, method: str) -> Any:
    """A handler for an RPC whose contract exists but which this release does not serve:
    UNIMPLEMENTED with reason NOT_SERVED_YET, so clients can tell it from a typo."""

    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        raise errors.NotServed(f"{method} is not served by this release yet")

    return unary(table, method)(handler)
