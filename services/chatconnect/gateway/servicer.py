"""GatewayService.Connect over gRPC: one bidirectional stream per connected device.

Tasks serve a connection: the delivery loop (inbox → client), the frame reader and, from
the device's first send on, the send worker (client sends, one at a time so one device's
messages keep their order). All of them put frames on one bounded queue that the handler
yields from.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from chatconnect.bus.ports import Bus, Subscription
from chatconnect.devices.ports import DeviceStore
from chatconnect.errordetails.v1 import errordetails_pb2
from chatconnect.gateway.config import GatewayConfig
from chatconnect.gateway.domain.admission import Admission, Admitted
from chatconnect.gateway.domain.delivery import (
    DeliveryLoop,
    DeviceRevokedWhileConnected,
    Drained,
    Outbound,
)
from chatconnect.gateway.domain.errors import FrameEmpty, HelloMissing, Shed
from chatconnect.gateway.v1 import gateway_pb2
from chatconnect.gateway.v1 import gateway_service_pb2 as pb
from chatconnect.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from chatconnect.model import DeviceAddress, DeviceKind, Envelope, InboxGap, ReceiptType
from chatconnect.presence.domain.presence import PresenceService, new_holder_id
from chatconnect.presence.ports import Holder
from chatconnect.router import wire as router_wire
from chatconnect.router.domain.inbox import InboxService
from chatconnect.router.domain.sending import SendService
from chatconnect.router.v1 import router_pb2
from chatconnect.runtime import telemetry, wire
from chatconnect.runtime.auth import Authenticator
from chatconnect.runtime.edge import (
    ErrorTable,
    WireError,
    bearer_token,
    internal_error_frame,
    stream,
)
from chatconnect.runtime.errors import ChatConnectError
from chatconnect.runtime.logging import get_logger
from chatconnect.runtime.mailbox import Mailbox
from chatconnect.runtime.teardown import run_to_end
from chatconnect.sharding.fence import EpochFence

log = get_logger("gateway")
Code = grpc.StatusCode
Context = grpc.aio.ServicerContext[Any, Any]


def _duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


def _shed_details(exc: Shed) -> list[Message]:
    delay = _duration(exc.retry_after_seconds)
    return [
        errordetails_pb2.Overloaded(retry_after=delay),
        error_details_pb2.RetryInfo(retry_delay=delay),
    ]


ERRORS = ErrorTable(
    "gateway.chatconnect",
    {
        HelloMissing: WireError(Code.INVALID_ARGUMENT, "HELLO_MISSING"),
        FrameEmpty: WireError(Code.INVALID_ARGUMENT, "FRAME_EMPTY"),
        Shed: WireError(Code.UNAVAILABLE, "OVERLOADED", _shed_details),
    },
)

_END = object()


class _Connection:
    """The state of one open stream."""

    def __init__(self, device: DeviceAddress, session_id: str, capacity: int) -> None:
        self.device = device
        self.session_id = session_id
        self.out: Mailbox[object] = Mailbox(capacity)
        self.last_frame_at = time.monotonic()
        self.closing = False

    async def send(self, frame: pb.ConnectResponse) -> None:
        await self.out.put(frame)

    def close_with(self, frame: pb.ConnectResponse | None) -> None:
        """Ends the stream after `frame`, even if the client stopped reading."""
        self.closing = True
        while True:
            try:
                if frame is not None:
                    self.out.put_nowait(frame)
                    frame = None
                self.out.put_nowait(_END)
                return
            except asyncio.QueueFull:
                self.out.get_nowait()


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Cancels `tasks` and waits until each has ended, however it ends."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with suppress(asyncio.CancelledError, Exception):
            await task


class _Sends:
    """A device's sends, answered one at a time so its messages keep their order, by a
    worker task started at the first send: most connected devices are idle, and a task
    costs about 1 KB for the life of the connection."""

    def __init__(
        self,
        connection: _Connection,
        capacity: int,
        answer: Callable[[router_pb2.OutgoingMessage], Awaitable[pb.ConnectResponse]],
    ) -> None:
        self._connection = connection
        self._answer = answer
        # None ends the queue.
        self._queued: Mailbox[router_pb2.OutgoingMessage | None] = Mailbox(capacity)
        self.worker: asyncio.Task[None] | None = None

    async def put(self, message: router_pb2.OutgoingMessage) -> None:
        if self.worker is None:
            self.worker = asyncio.create_task(self._work())
        await self._queued.put(message)

    async def end(self) -> None:
        """The client closed its side: the stream ends once every send it made is
        answered."""
        if self.worker is None:
            self._connection.close_with(None)
        else:
            await self._queued.put(None)

    async def stop(self) -> None:
        """Ends the worker, if one started, without answering what is queued."""
        if self.worker is not None:
            await _cancel([self.worker])

    async def _work(self) -> None:
        while True:
            message = await self._queued.get()
            if message is None:
                self._connection.close_with(None)
                return
            await self._connection.send(await self._answer(message))


class GatewayServicer(pb_grpc.GatewayServiceServicer):
    """Holds device connections for this process."""

    def __init__(
        self,
        *,
        sending: SendService,
        inbox: InboxService,
        devices: DeviceStore,
        bus: Bus,
        authenticator: Authenticator,
        fence: EpochFence,
        config: GatewayConfig,
        presence: PresenceService | None = None,
    ) -> None:
        self._presence = presence
        self._sending = sending
        self._inbox = inbox
        self._devices = devices
        self._bus = bus
        self._auth = authenticator
        self._fence = fence
        self._config = config
        self._admission = Admission(
            max_connections=config.max_connections,
            max_handshakes=config.max_handshakes,
            connects_per_second=config.connects_per_second,
            shed_retry_seconds=config.shed_retry_seconds,
        )
        self._connections: dict[DeviceAddress, _Connection] = {}
        self._frames = _Frames()

    @property
    def open_connections(self) -> int:
        """How many streams are open."""
        return self._admission.open_connections

    def drain(self, retry_after_seconds: float) -> None:
        """Refuses new streams and asks every open one to reconnect elsewhere."""
        self._admission.draining = True
        frame = pb.ConnectResponse(
            go_away=gateway_pb2.GoAway(
                reason="DRAINING", retry_after=_duration(retry_after_seconds)
            )
        )
        for connection in list(self._connections.values()):
            connection.close_with(frame)

    @stream(ERRORS, "GatewayService/Connect")
    async def Connect(
        self, request_iterator: AsyncIterator[pb.ConnectRequest], context: Context
    ) -> AsyncIterator[pb.ConnectResponse]:
        admitted = self._admission.admit()
        telemetry.connection_opened()
        try:
            async for frame in self._serve(request_iterator, context, admitted):
                yield frame
        finally:
            admitted.release()
            telemetry.connection_closed()

    async def _serve(
        self, requests: AsyncIterator[pb.ConnectRequest], context: Context, admitted: Admitted
    ) -> AsyncIterator[pb.ConnectResponse]:
        hello = await self._read_hello(requests)
        token = bearer_token(context) or hello.access_token
        claims = await self._auth.authenticate(token)
        device = claims.device
        window = min(
            hello.delivery_window or self._config.delivery_window,
            self._config.max_delivery_window,
        )
        connection = _Connection(device, uuid.uuid4().hex, capacity=window + 64)
        previous = self._connections.get(device)
        if previous is not None:
            previous.close_with(pb.ConnectResponse(go_away=gateway_pb2.GoAway(reason="REPLACED")))
        self._connections[device] = connection
        await self._devices.touch(device, time.time())
        subscription = await self._bus.subscribe(device)

        async def emit(item: Outbound) -> None:
            await connection.send(self._frames.frame(item))

        loop = DeliveryLoop(
            device,
            inbox=self._inbox,
            window=window,
            page_size=self._inbox.page_size(0),
            emit=emit,
        )
        yield pb.ConnectResponse(
            welcome=gateway_pb2.Welcome(
                device=wire.address_to_wire(device),
                session_id=connection.session_id,
                server_time=wire.timestamp(time.time()),
                delivery_window=window,
                ping_interval=_duration(self._config.ping_interval_seconds),
                shard_epoch=self._fence.current_epoch,
            )
        )
        sends = _Sends(
            connection,
            self._config.max_pending_frames,
            lambda message: self._answer_send(device, message),
        )
        tasks = [
            asyncio.create_task(self._run_delivery(loop, subscription, connection)),
            asyncio.create_task(self._read_frames(requests, device, loop, sends, connection)),
        ]
        log.info("device connected", device=str(device), session=connection.session_id)
        holder = Holder(device, new_holder_id("c"), DeviceKind.UNSPECIFIED)
        try:
            await self._presence_connected(holder, hello)
            admitted.welcomed()
            while True:
                frame = await connection.out.get()
                if frame is _END:
                    break
                yield frame  # type: ignore[misc]
        finally:
            await run_to_end(
                self._tear_down(connection, tasks, sends, subscription, holder),
                what="gateway stream",
            )

    async def _tear_down(
        self,
        connection: _Connection,
        tasks: list[asyncio.Task[None]],
        sends: _Sends,
        subscription: Subscription,
        holder: Holder,
    ) -> None:
        """Undoes what the stream set up; runs to its end even if the handler is
        cancelled meanwhile (the client reset the stream just after closing its side)."""
        device = connection.device
        await _cancel(tasks)
        # Only now: the frame reader, ended above, is what starts the send worker.
        await sends.stop()
        await subscription.close()
        if self._presence is not None:
            try:
                # Offline at once, not when the lease runs out (even if the stream ended
                # while it was being marked online).
                await self._presence.disconnected(holder)
            except Exception as exc:
                log.warning("presence not updated on disconnect", error=str(exc))
        if self._connections.get(device) is connection:
            del self._connections[device]
        log.info("device disconnected", device=str(device), session=connection.session_id)

    async def _presence_connected(self, holder: Holder, hello: gateway_pb2.Hello) -> None:
        """Marks the device online with its kind while the stream lives (the presence
        service renews the lease). Presence is best effort: the stream works without it."""
        if self._presence is None:
            return
        try:
            known = int(hello.kind) in DeviceKind._value2member_map_
            kind = DeviceKind(hello.kind) if known else DeviceKind.UNSPECIFIED
            await self._presence.connected(holder.device, kind, holder=holder.holder_id)
        except Exception:
            log.exception("presence not updated", device=str(holder.device))

    async def _read_hello(self, requests: AsyncIterator[pb.ConnectRequest]) -> gateway_pb2.Hello:
        try:
            first = await asyncio.wait_for(anext(requests), self._config.hello_timeout_seconds)
        except (StopAsyncIteration, TimeoutError):
            raise HelloMissing("send Hello as the first frame") from None
        if first.WhichOneof("frame") != "hello":
            raise HelloMissing("the first frame must be Hello")
        return first.hello

    async def _run_delivery(
        self, loop: DeliveryLoop, subscription: Any, connection: _Connection
    ) -> None:
        try:
            await loop.run(subscription)
        except DeviceRevokedWhileConnected:
            connection.close_with(
                pb.ConnectResponse(go_away=gateway_pb2.GoAway(reason="DEVICE_REVOKED"))
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("delivery stopped", device=str(connection.device), error=str(exc))
            connection.close_with(
                pb.ConnectResponse(
                    go_away=gateway_pb2.GoAway(
                        reason="STORE_UNAVAILABLE",
                        retry_after=_duration(self._config.shed_retry_seconds),
                    )
                )
            )

    async def _answer_send(
        self, device: DeviceAddress, message: router_pb2.OutgoingMessage
    ) -> pb.ConnectResponse:
        try:
            result = await self._sending.send(device, router_wire.outgoing_from_wire(message))
            return pb.ConnectResponse(sent=router_wire.send_result_to_wire(result))
        except ChatConnectError as exc:
            return pb.ConnectResponse(
                send_failed=gateway_pb2.SendFailure(
                    client_message_id=message.client_message_id,
                    error=router_wire.ERRORS.to_error_frame(exc),
                )
            )
        except Exception:
            log.exception("send failed", device=str(device))
            return pb.ConnectResponse(
                send_failed=gateway_pb2.SendFailure(
                    client_message_id=message.client_message_id,
                    error=internal_error_frame(router_wire.ERRORS.domain),
                )
            )

    async def _read_frames(
        self,
        requests: AsyncIterator[pb.ConnectRequest],
        device: DeviceAddress,
        loop: DeliveryLoop,
        sends: _Sends,
        connection: _Connection,
    ) -> None:
        try:
            async for request in requests:
                connection.last_frame_at = time.monotonic()
                kind = request.WhichOneof("frame")
                if kind == "send":
                    await sends.put(request.send)
                elif kind == "ack":
                    await self._acknowledge(device, list(request.ack.ids), loop, connection)
                elif kind == "receipts":
                    await self._receipts(device, request.receipts, connection)
                elif kind == "ping":
                    await connection.send(
                        pb.ConnectResponse(
                            pong=gateway_pb2.Pong(
                                nonce=request.ping.nonce, server_time=wire.timestamp(time.time())
                            )
                        )
                    )
                elif kind == "hello":
                    await connection.send(
                        _request_failed("", ERRORS, HelloMissing("Hello may be sent only once"))
                    )
                else:
                    await connection.send(
                        _request_failed("", ERRORS, FrameEmpty("the frame has no field set"))
                    )
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            raise
        except Exception:
            log.exception("reading frames failed", device=str(device))
        await sends.end()

    async def _acknowledge(
        self, device: DeviceAddress, ids: list[str], loop: DeliveryLoop, connection: _Connection
    ) -> None:
        try:
            await self._inbox.acknowledge(
                device,
                ids,
                log_entries=loop.take_log_entries(ids),
                on_removed=lambda: loop.acknowledged(ids),
            )
        except ChatConnectError as exc:
            await connection.send(_request_failed("", router_wire.ERRORS, exc))

    async def _receipts(
        self, device: DeviceAddress, request: gateway_pb2.SendReceipts, connection: _Connection
    ) -> None:
        try:
            await self._inbox.send_receipts(
                device,
                receipt_type=wire.enum_from_wire(ReceiptType, request.type, "type"),
                messages=router_wire.received_from_wire(request.messages),
            )
        except ChatConnectError as exc:
            await connection.send(_request_failed(request.request_id, router_wire.ERRORS, exc))
            return
        await connection.send(
            pb.ConnectResponse(
                receipts_accepted=gateway_pb2.ReceiptsAccepted(request_id=request.request_id)
            )
        )

    async def close_idle_connections(self) -> None:
        """Ends, with GoAway IDLE, every stream silent for two ping intervals; runs until
        cancelled. One task for the whole process rather than one per connection."""
        limit = 2 * self._config.ping_interval_seconds
        while True:
            await asyncio.sleep(min(limit / 4, 5.0))
            now = time.monotonic()
            for connection in list(self._connections.values()):
                if not connection.closing and now - connection.last_frame_at > limit:
                    log.info("closing idle connection", device=str(connection.device))
                    connection.close_with(
                        pb.ConnectResponse(go_away=gateway_pb2.GoAway(reason="IDLE"))
                    )


def _request_failed(
    request_id: str, table: ErrorTable, exc: ChatConnectError
) -> pb.ConnectResponse:
    return pb.ConnectResponse(
        request_failed=gateway_pb2.RequestFailure(
            request_id=request_id, error=table.to_error_frame(exc)
        )
    )


class _Frames:
    """Makes outbound frames, each envelope's once while it is among the most recent
    `remembered`: a large group's message reaches every connected member as one Envelope
    object (from the bus), and building its frame costs about as much as writing it. The
    same frame object is then written to every stream (gRPC only reads what it writes)."""

    def __init__(self, remembered: int = 64) -> None:
        self._remembered = remembered
        # id(envelope) -> (the envelope, its frame). Holding the envelope keeps its id from
        # being reused while the entry lives.
        self._kept: OrderedDict[int, tuple[Envelope, pb.ConnectResponse]] = OrderedDict()

    def frame(self, item: Outbound) -> pb.ConnectResponse:
        if isinstance(item, Drained):
            return pb.ConnectResponse(
                drained=gateway_pb2.InboxDrained(through_sequence=item.through_sequence)
            )
        if isinstance(item, InboxGap):
            return pb.ConnectResponse(gap=wire.gap_to_wire(item))
        kept = self._kept.get(id(item))
        if kept is not None and kept[0] is item:
            return kept[1]
        frame = pb.ConnectResponse(envelope=wire.envelope_to_wire(item))
        self._kept[id(item)] = (item, frame)
        if len(self._kept) > self._remembered:
            self._kept.popitem(last=False)
        return frame
