"""ChatClient: one device's connection, with automatic reconnect and resend.

Sends are kept until the server answers `sent`, and are written again, in their original
order, after every reconnect; the server deduplicates them by client message id. Received
envelopes are acknowledged in batches once queued for the application, and a redelivered
envelope (an inbox sequence already handed over) is acknowledged again but not handed over
twice. Envelopes may arrive below the highest sequence seen: in the distributed mode a send
that committed late is delivered late, and is new.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from nacl.exceptions import CryptoError

from chatconnect.client.account import RPC_TIMEOUT, Account
from chatconnect.client.errors import ChatError
from chatconnect.client.keys import seal
from chatconnect.client.sender_keys import SenderKeys
from chatconnect.common.v1 import common_pb2
from chatconnect.errordetails.v1 import errordetails_pb2
from chatconnect.gateway.v1 import gateway_pb2
from chatconnect.gateway.v1 import gateway_service_pb2 as gw
from chatconnect.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from chatconnect.groups.v1 import groups_service_pb2 as groups_pb
from chatconnect.groups.v1 import groups_service_pb2_grpc as groups_grpc
from chatconnect.keys.v1 import keys_service_pb2 as keys_pb
from chatconnect.keys.v1 import keys_service_pb2_grpc as keys_grpc
from chatconnect.router.v1 import router_pb2
from chatconnect.router.v1 import router_service_pb2 as router_pb
from chatconnect.router.v1 import router_service_pb2_grpc as router_grpc

ACK_BATCH = 64
ACK_COALESCE_SECONDS = 0.005
MAX_BACKOFF_SECONDS = 5.0
FATAL_REASONS = {"DEVICE_REVOKED", "TOKEN_INVALID"}


@dataclass(frozen=True)
class Received:
    """An inbox item handed to the application: an envelope (decrypted when it is a
    message for this device) or a gap."""

    envelope: common_pb2.Envelope | None = None
    plaintext: bytes | None = None
    gap: common_pb2.InboxGap | None = None
    undecryptable: bool = False

    @property
    def text(self) -> str:
        """The message text (empty for receipts, notices and gaps)."""
        return (self.plaintext or b"").decode()


_HANDED_OVER_MEMORY = 10_000
"""Recent sequences remembered for deduplication: far more than any delivery window."""


@dataclass
class _DeviceKey:
    registration_id: int
    prekey: bytes


class ChatClient:
    """A connected device. Use as `async with ChatClient(target, account) as client:`."""

    def __init__(
        self, target: str, account: Account, *, window: int = 100, reconnect: bool = True
    ) -> None:
        self.target = target
        self.account = account
        self._window = window
        self._reconnect = reconnect
        # One connection per device, as on a real phone: gRPC would otherwise share one
        # HTTP/2 connection between clients of a process, whose stream limit then caps how
        # many devices one process (a test, a load generator) can hold.
        self._channel = grpc.aio.insecure_channel(
            target, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        self._received: asyncio.Queue[Received] = asyncio.Queue()
        self._pending: OrderedDict[
            str, tuple[router_pb2.OutgoingMessage, asyncio.Future[router_pb2.SendResult]]
        ] = OrderedDict()
        self._devices: dict[str, dict[int, _DeviceKey]] = {}
        self._fetch_locks: dict[str, asyncio.Lock] = {}
        self._ack_buffer: list[str] = []
        self._ack_wakeup = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._call: grpc.aio.StreamStreamCall[gw.ConnectRequest, gw.ConnectResponse] | None = None
        self._connected = asyncio.Event()
        self._drained = asyncio.Event()
        self._closing = False
        self._runner: asyncio.Task[None] | None = None
        self._acker: asyncio.Task[None] | None = None
        self._retries: set[asyncio.Task[None]] = set()
        self.fatal: ChatError | None = None
        self.connections = 0
        self.last_sequence = 0
        # Sequences handed over, newest last; redeliveries come from the unacknowledged
        # window, so remembering a bounded number of recent ones is enough.
        self._handed_over: OrderedDict[int, None] = OrderedDict()
        self.go_away_reasons: list[str] = []
        self.shard_epoch = 0
        """The shard-map epoch in force, from Welcome or a STALE_SHARD_EPOCH refusal."""
        self.last_error: BaseException | None = None
        self.sender_keys = SenderKeys()
        self.group_log_positions: dict[str, int] = {}
        """Per large group, the highest log position handed over (the sync cursor)."""
        self._group_log_seen: dict[str, set[int]] = {}

    async def __aenter__(self) -> ChatClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connection -------------------------------------------------------------------

    async def connect(self, *, timeout: float = 10.0) -> None:
        """Opens the stream (and keeps it open) and waits for the server's Welcome."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run())
            self._acker = asyncio.create_task(self._flush_acks())
        await self._wait(self._connected, timeout)

    async def close(self) -> None:
        """Closes the stream and the channel."""
        self._closing = True
        for task in (self._runner, self._acker, *self._retries):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._channel.close()

    async def drop_connection(self) -> None:
        """Cuts the current stream as a network failure would (the client reconnects)."""
        if self._call is not None:
            self._connected.clear()
            self._call.cancel()

    async def wait_drained(self, timeout: float = 30.0) -> None:
        """Waits until the server says the stored backlog has been delivered."""
        await self._wait(self._drained, timeout)

    async def _wait(self, event: asyncio.Event, timeout: float) -> None:
        waiter = asyncio.create_task(event.wait())
        done, _ = await asyncio.wait(
            {waiter, *(t for t in (self._runner,) if t)},
            timeout=timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if waiter not in done:
            waiter.cancel()
            if self.fatal is not None:
                raise self.fatal
            raise TimeoutError(f"no answer from {self.target} within {timeout}s")

    async def _run(self) -> None:
        backoff = 0.1
        while not self._closing:
            try:
                await self._session()
                backoff = 0.1
            except grpc.aio.AioRpcError as exc:
                error = ChatError.from_rpc(exc)
                if error.reason == "TOKEN_EXPIRED":
                    with contextlib.suppress(ChatError):
                        await self.account.refresh(self._channel)
                        continue
                if error.reason in FATAL_REASONS or error.code == grpc.StatusCode.UNAUTHENTICATED:
                    self._fail_all(error)
                    return
                hint = _retry_hint(error)
                if hint is not None:
                    backoff = hint
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._closing or (task is not None and task.cancelling()):
                    raise
                # Only the call was cancelled (drop_connection): reconnect.
            except Exception as exc:
                self.last_error = exc
            finally:
                self._connected.clear()
                self._call = None
            if self._closing or not self._reconnect or self.fatal is not None:
                return
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _session(self) -> None:
        call = gw_grpc.GatewayServiceStub(self._channel).Connect(metadata=self.account.metadata())
        self._call = call
        await call.write(
            gw.ConnectRequest(
                hello=gateway_pb2.Hello(
                    kind=common_pb2.DEVICE_KIND_PHONE,
                    delivery_window=self._window,
                    user_agent="chatconnect-py/0.1.0",
                )
            )
        )
        welcome = await call.read()
        if not isinstance(welcome, gw.ConnectResponse) or not welcome.HasField("welcome"):
            return
        self.shard_epoch = max(self.shard_epoch, welcome.welcome.shard_epoch)
        self.connections += 1
        self._drained.clear()
        self._connected.set()
        for outgoing, _future in list(self._pending.values()):
            await self._write_send(outgoing)
        interval = welcome.welcome.ping_interval.ToTimedelta().total_seconds()
        keep_alive = asyncio.create_task(self._ping_every(interval)) if interval > 0 else None
        try:
            await self._read_frames(call)
        finally:
            if keep_alive is not None:
                keep_alive.cancel()

    async def _ping_every(self, interval: float) -> None:
        """Pings as often as Welcome asks: the server closes a silent stream after twice the
        interval, and an idle device must stay connected (and shown online)."""
        nonce = 0
        while True:
            await asyncio.sleep(interval)
            nonce += 1
            await self._write(gw.ConnectRequest(ping=gateway_pb2.Ping(nonce=nonce)))

    async def _read_frames(
        self, call: grpc.aio.StreamStreamCall[gw.ConnectRequest, gw.ConnectResponse]
    ) -> None:
        while True:
            frame = await call.read()
            if not isinstance(frame, gw.ConnectResponse):
                return  # end of stream
            kind = frame.WhichOneof("frame")
            if kind == "envelope":
                await self._on_envelope(frame.envelope)
            elif kind == "gap":
                self._queue_ack(frame.gap.gap_id)
                self.last_sequence = max(self.last_sequence, frame.gap.last_sequence)
                await self._received.put(Received(gap=frame.gap))
            elif kind == "sent":
                self._settle(frame.sent.client_message_id, result=frame.sent)
            elif kind == "send_failed":
                error = ChatError.from_frame(frame.send_failed.error)
                if error.code == grpc.StatusCode.UNAVAILABLE:
                    self._retry_later(frame.send_failed.client_message_id, error)
                elif error.reason == "STALE_SHARD_EPOCH":
                    await self._reroute(frame.send_failed.client_message_id, error)
                else:
                    self._settle(frame.send_failed.client_message_id, error=error)
            elif kind == "drained":
                self._drained.set()
            elif kind == "go_away":
                self.go_away_reasons.append(frame.go_away.reason)
                if frame.go_away.reason == "DEVICE_REVOKED":
                    self._fail_all(
                        ChatError(
                            grpc.StatusCode.UNAUTHENTICATED, "device unlinked", "DEVICE_REVOKED", []
                        )
                    )
                return

    async def _reroute(self, cmid: str, error: ChatError) -> None:
        """Adopts the newer shard-map epoch a refusal names and sends `cmid` again."""
        stale = error.detail(errordetails_pb2.StaleShardEpoch)
        entry = self._pending.get(cmid)
        if entry is None:
            return
        if stale is None or stale.current_epoch <= entry[0].shard_epoch:
            # Nothing newer to adopt: resending would be refused again.
            self._settle(cmid, error=error)
            return
        self.shard_epoch = max(self.shard_epoch, stale.current_epoch)
        await self._write_send(entry[0])

    async def _write_send(self, outgoing: router_pb2.OutgoingMessage) -> None:
        """Writes a send stamped with the epoch in force now."""
        outgoing.shard_epoch = self.shard_epoch
        await self._write(gw.ConnectRequest(send=outgoing))

    async def _write(self, request: gw.ConnectRequest) -> None:
        async with self._write_lock:
            if self._call is None:
                return
            # If the stream is gone, the run loop reconnects and resends.
            with contextlib.suppress(
                grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError
            ):
                await self._call.write(request)

    def _fail_all(self, error: ChatError) -> None:
        self.fatal = error
        for cmid in list(self._pending):
            self._settle(cmid, error=error)

    # -- receiving --------------------------------------------------------------------

    async def _on_envelope(self, envelope: common_pb2.Envelope) -> None:
        if envelope.group_log_position:
            await self._on_group_log_entry(envelope, pushed=True)
            return
        self._queue_ack(envelope.server_message_id)
        if envelope.sequence in self._handed_over:
            return  # redelivered after a lost acknowledgement: already handed over
        self._handed_over[envelope.sequence] = None
        if len(self._handed_over) > _HANDED_OVER_MEMORY:
            self._handed_over.popitem(last=False)
        self.last_sequence = max(self.last_sequence, envelope.sequence)
        plaintext = None
        undecryptable = False
        if envelope.type in (
            common_pb2.ENVELOPE_TYPE_CIPHERTEXT,
            common_pb2.ENVELOPE_TYPE_PREKEY_CIPHERTEXT,
        ):
            try:
                plaintext = self.account.keys.open(envelope.content)
            except CryptoError:
                undecryptable = True  # handed over all the same: the app decides
        elif envelope.type == common_pb2.ENVELOPE_TYPE_SENDER_KEY_DISTRIBUTION:
            try:
                distribution = self.account.keys.open(envelope.content)
                self.sender_keys.accept(
                    envelope.destination.group_id,
                    (envelope.sender.user_id, envelope.sender.device_id),
                    distribution,
                )
            except CryptoError:
                undecryptable = True
        elif envelope.type == common_pb2.ENVELOPE_TYPE_SENDER_KEY_CIPHERTEXT:
            plaintext = self._open_group_message(envelope)
            undecryptable = plaintext is None
        await self._received.put(
            Received(envelope=envelope, plaintext=plaintext, undecryptable=undecryptable)
        )

    async def _on_group_log_entry(self, envelope: common_pb2.Envelope, *, pushed: bool) -> None:
        """A large group's message, handed over once per log position. A pushed one is
        acknowledged, which counts it as delivered; a synced one was counted by the sync."""
        if pushed:
            self._queue_ack(envelope.server_message_id)
        group_id = envelope.destination.group_id
        seen = self.group_log_positions.get(group_id, 0)
        if envelope.group_log_position in self._group_log_seen.setdefault(group_id, set()):
            return
        self._group_log_seen[group_id].add(envelope.group_log_position)
        self.group_log_positions[group_id] = max(seen, envelope.group_log_position)
        plaintext = self._open_group_message(envelope)
        await self._received.put(
            Received(envelope=envelope, plaintext=plaintext, undecryptable=plaintext is None)
        )

    def _open_group_message(self, envelope: common_pb2.Envelope) -> bytes | None:
        return self.sender_keys.decrypt(
            envelope.destination.group_id,
            (envelope.sender.user_id, envelope.sender.device_id),
            envelope.content,
        )

    def _queue_ack(self, item_id: str) -> None:
        self._ack_buffer.append(item_id)
        self._ack_wakeup.set()

    async def _flush_acks(self) -> None:
        while True:
            await self._ack_wakeup.wait()
            await asyncio.sleep(ACK_COALESCE_SECONDS)
            self._ack_wakeup.clear()
            while self._ack_buffer:
                batch, self._ack_buffer = self._ack_buffer[:ACK_BATCH], self._ack_buffer[ACK_BATCH:]
                await self._write(gw.ConnectRequest(ack=gateway_pb2.Ack(ids=batch)))

    async def receive(self, timeout: float = 10.0) -> Received:
        """The next inbox item, in order."""
        return await asyncio.wait_for(self._received.get(), timeout)

    async def receive_message(self, timeout: float = 10.0) -> Received:
        """The next message (skipping receipts, notices and gaps)."""
        while True:
            item = await self.receive(timeout)
            if item.plaintext is not None:
                return item

    def pending_items(self) -> int:
        """Items received but not yet taken by the application."""
        return self._received.qsize()

    # -- sending ----------------------------------------------------------------------

    async def send(
        self, outgoing: router_pb2.OutgoingMessage, *, timeout: float = 30.0
    ) -> router_pb2.SendResult:
        """Sends over the stream; resolves once the server says the message is durable."""
        cmid = outgoing.client_message_id
        entry = self._pending.get(cmid)
        if entry is None:
            future: asyncio.Future[router_pb2.SendResult] = (
                asyncio.get_running_loop().create_future()
            )
            stamped = router_pb2.OutgoingMessage()
            stamped.CopyFrom(outgoing)
            self._pending[cmid] = (stamped, future)
            await self._write_send(stamped)
        else:
            future = entry[1]
        return await asyncio.wait_for(asyncio.shield(future), timeout)

    def _retry_later(self, cmid: str, error: ChatError) -> None:
        """Sends `cmid` again after the server's retry hint (with jitter); the server
        recognises the repeat by its client message id."""
        hint = error.detail(error_details_pb2.RetryInfo)
        delay = hint.retry_delay.ToTimedelta().total_seconds() if hint is not None else 1.0
        task = asyncio.create_task(self._resend_after(cmid, delay * (0.5 + random.random())))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _resend_after(self, cmid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        entry = self._pending.get(cmid)
        if entry is not None and not entry[1].done():
            await self._write_send(entry[0])

    def _settle(
        self,
        cmid: str,
        *,
        result: router_pb2.SendResult | None = None,
        error: ChatError | None = None,
    ) -> None:
        entry = self._pending.pop(cmid, None)
        if entry is None or entry[1].done():
            return
        if error is not None:
            entry[1].set_exception(error)
        else:
            entry[1].set_result(result)  # type: ignore[arg-type]

    async def send_text(
        self,
        to_user_id: str,
        text: str,
        *,
        client_message_id: str | None = None,
        timeout: float = 30.0,
    ) -> router_pb2.SendResult:
        """Encrypts `text` for every device of `to_user_id` and of this account, and sends
        it; gives up after `timeout` seconds without an acknowledgement (see `send`)."""
        cmid = client_message_id or uuid.uuid4().hex
        for _attempt in range(3):
            outgoing = router_pb2.OutgoingMessage(
                client_message_id=cmid,
                destination=common_pb2.ConversationRef(user_id=to_user_id),
                ciphertexts=await self._encrypt_for(to_user_id, text.encode()),
            )
            try:
                return await self.send(outgoing, timeout=timeout)
            except ChatError as error:
                failure = error.detail(errordetails_pb2.DeviceListMismatchFailure)
                if error.reason != "DEVICE_LIST_MISMATCH" or failure is None:
                    raise
                for mismatch in failure.mismatches:
                    self._devices.pop(mismatch.user_id, None)
        raise ChatError(
            grpc.StatusCode.ABORTED, "device list kept changing", "DEVICE_LIST_UNSTABLE", []
        )

    async def send_group_text(
        self, group_id: str, text: str, *, client_message_id: str | None = None
    ) -> router_pb2.SendResult:
        """Encrypts `text` once with this device's sender key for the group, distributes the
        key to member devices that lack it, and sends. Refreshes the members and rotates the
        key when the membership changed."""
        cmid = client_message_id or uuid.uuid4().hex
        for _attempt in range(3):
            version, devices = await self._group_devices(group_id)
            lacking = self.sender_keys.devices_lacking(group_id, devices)
            outgoing = router_pb2.OutgoingMessage(
                client_message_id=cmid,
                destination=common_pb2.ConversationRef(group_id=group_id),
                group_membership_version=version,
                group_content=self.sender_keys.encrypt(group_id, text.encode()),
                ciphertexts=await self._distribute_sender_key(group_id, lacking),
            )
            try:
                result = await self.send(outgoing)
            except ChatError as error:
                if error.reason == "MEMBERSHIP_VERSION_STALE":
                    # Someone may have left: they must not read what follows.
                    self.sender_keys.rotate(group_id)
                    continue
                if error.reason == "DEVICE_LIST_MISMATCH":
                    failure = error.detail(errordetails_pb2.DeviceListMismatchFailure)
                    for mismatch in failure.mismatches if failure is not None else []:
                        self._devices.pop(mismatch.user_id, None)
                    continue
                raise
            self.sender_keys.mark_sent(group_id, lacking)
            return result
        raise ChatError(
            grpc.StatusCode.ABORTED, "group membership kept changing", "MEMBERSHIP_UNSTABLE", []
        )

    async def _group_devices(self, group_id: str) -> tuple[int, list[tuple[str, int]]]:
        """The membership version and every member device but this one."""
        devices: list[tuple[str, int]] = []
        page_token = ""
        version = 0
        while True:
            response = await self._unary(
                groups_grpc.GroupsServiceStub(self._channel).GetGroupDevices,
                groups_pb.GetGroupDevicesRequest(group_id=group_id, page_token=page_token),
            )
            assert isinstance(response, groups_pb.GetGroupDevicesResponse)
            version = response.membership_version
            for member in response.members:
                devices.extend((member.user_id, d.device_id) for d in member.devices)
            page_token = response.next_page_token
            if not page_token:
                return version, devices

    async def _distribute_sender_key(
        self, group_id: str, devices: list[tuple[str, int]]
    ) -> list[router_pb2.DeviceCiphertext]:
        distribution = self.sender_keys.distribution(group_id)
        ciphertexts = []
        for user_id, device_id in devices:
            key = (await self._device_keys(user_id)).get(device_id)
            if key is None:
                self._devices.pop(user_id, None)  # linked since the last fetch
                key = (await self._device_keys(user_id))[device_id]
            ciphertexts.append(
                router_pb2.DeviceCiphertext(
                    device=common_pb2.DeviceAddress(user_id=user_id, device_id=device_id),
                    registration_id=key.registration_id,
                    type=common_pb2.ENVELOPE_TYPE_SENDER_KEY_DISTRIBUTION,
                    content=seal(key.prekey, distribution),
                )
            )
        return ciphertexts

    async def sync_group_log(self, group_id: str, *, page_size: int = 0) -> int:
        """Fetches a large group's messages after the highest position handed over and
        hands them over like pushed ones; returns how many were new."""
        before = len(self._group_log_seen.get(group_id, ()))
        while True:
            response = await self._unary(
                router_grpc.RouterServiceStub(self._channel).SyncGroupLog,
                router_pb.SyncGroupLogRequest(
                    group_id=group_id,
                    after_position=self.group_log_positions.get(group_id, 0),
                    page_size=page_size,
                ),
            )
            assert isinstance(response, router_pb.SyncGroupLogResponse)
            for envelope in response.envelopes:
                await self._on_group_log_entry(envelope, pushed=False)
            if not response.envelopes:
                return len(self._group_log_seen.get(group_id, ())) - before

    async def _encrypt_for(
        self, to_user_id: str, plaintext: bytes
    ) -> list[router_pb2.DeviceCiphertext]:
        ciphertexts = []
        for user_id in dict.fromkeys([to_user_id, self.account.user_id]):
            for device_id, key in (await self._device_keys(user_id)).items():
                if user_id == self.account.user_id and device_id == self.account.device_id:
                    continue
                ciphertexts.append(
                    router_pb2.DeviceCiphertext(
                        device=common_pb2.DeviceAddress(user_id=user_id, device_id=device_id),
                        registration_id=key.registration_id,
                        type=common_pb2.ENVELOPE_TYPE_CIPHERTEXT,
                        content=seal(key.prekey, plaintext),
                    )
                )
        return ciphertexts

    async def _device_keys(self, user_id: str) -> dict[int, _DeviceKey]:
        # Concurrent sends to one user share a single directory fetch.
        async with self._fetch_locks.setdefault(user_id, asyncio.Lock()):
            if user_id not in self._devices:
                response = await self._unary(
                    keys_grpc.KeysServiceStub(self._channel).GetPreKeyBundles,
                    keys_pb.GetPreKeyBundlesRequest(user_id=user_id),
                )
                assert isinstance(response, keys_pb.GetPreKeyBundlesResponse)
                self._devices[user_id] = {
                    b.device_id: _DeviceKey(b.registration_id, b.signed_prekey.public_key)
                    for b in response.bundles
                }
            return self._devices[user_id]

    # -- unary helpers ----------------------------------------------------------------

    async def _unary(self, method: object, request: object) -> object:
        for attempt in range(2):
            try:
                return await method(request, metadata=self.account.metadata(), timeout=RPC_TIMEOUT)  # type: ignore[operator]
            except grpc.aio.AioRpcError as exc:
                error = ChatError.from_rpc(exc)
                if error.reason == "TOKEN_EXPIRED" and attempt == 0:
                    await self.account.refresh(self._channel)
                    continue
                raise error from None
        raise AssertionError("unreachable")

    async def send_receipts(
        self, receipt_type: int, messages: Sequence[tuple[str, str] | tuple[str, str, str]]
    ) -> None:
        """Sends READ or PLAYED receipts for (sender user id, server message id) pairs, or
        (sender user id, server message id, group id) for group messages."""
        await self._unary(
            router_grpc.RouterServiceStub(self._channel).SendReceipts,
            router_pb.SendReceiptsRequest(
                request_id=uuid.uuid4().hex,
                type=receipt_type,  # type: ignore[arg-type]
                messages=[
                    router_pb2.ReceivedMessage(
                        sender_user_id=m[0],
                        server_message_id=m[1],
                        group_id=m[2] if len(m) > 2 else "",
                    )
                    for m in messages
                ],
            ),
        )

    async def list_inbox(
        self, *, page_size: int = 0, page_token: str = ""
    ) -> router_pb.ListInboxItemsResponse:
        """One page of the inbox, without the stream."""
        response = await self._unary(
            router_grpc.RouterServiceStub(self._channel).ListInboxItems,
            router_pb.ListInboxItemsRequest(page_size=page_size, page_token=page_token),
        )
        assert isinstance(response, router_pb.ListInboxItemsResponse)
        return response


def _retry_hint(error: ChatError) -> float | None:
    overloaded = error.detail(errordetails_pb2.Overloaded)
    if overloaded is not None:
        return float(overloaded.retry_after.ToNanoseconds() / 1e9)
    return None
