"""The SDK's error type: a gRPC status or a stream frame error, with its ErrorInfo."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from chatconnect.common.v1 import common_pb2


class ChatError(Exception):
    """A request failed; `code`, `reason` and `details` say why."""

    def __init__(
        self, code: grpc.StatusCode, message: str, reason: str, details: list[Any]
    ) -> None:
        super().__init__(f"{code.name} {reason}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.details = details

    def detail(self, kind: type[Message]) -> Any:
        """The first detail of type `kind`, or None."""
        for item in self.details:
            if isinstance(item, kind):
                return item
        return None

    @classmethod
    def from_rpc(cls, error: grpc.aio.AioRpcError) -> ChatError:
        """From a failed RPC, unpacking google.rpc.Status details."""
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        details: list[Any] = []
        reason = ""
        if status is not None:
            details = [_unpack(d) for d in status.details]
            for item in details:
                if isinstance(item, error_details_pb2.ErrorInfo):
                    reason = item.reason
        return cls(error.code(), error.details() or "", reason, details)

    @classmethod
    def from_frame(cls, error: common_pb2.Error) -> ChatError:
        """From a stream frame's Error."""
        code = next(
            (c for c in grpc.StatusCode if c.value[0] == error.code), grpc.StatusCode.UNKNOWN
        )
        return cls(code, error.message, error.reason, [_unpack(d) for d in error.details])


def _unpack(packed: Any) -> Any:
    from google.protobuf import symbol_database

    name = packed.type_url.rsplit("/", 1)[-1]
    try:
        message_class = symbol_database.Default().GetSymbol(name)
    except KeyError:
        return packed
    message = message_class()
    packed.Unpack(message)
    return message
