"""RouterService over gRPC."""

from __future__ import annotations

from typing import Any

import grpc

from chatconnect.model import ReceiptType
from chatconnect.router.domain.group_reading import GroupReading
from chatconnect.router.domain.inbox import InboxService, decode_page_token, encode_page_token
from chatconnect.router.domain.sending import SendService
from chatconnect.router.v1 import router_service_pb2 as pb
from chatconnect.router.v1 import router_service_pb2_grpc as pb_grpc
from chatconnect.router.wire import (
    ERRORS,
    outgoing_from_wire,
    received_from_wire,
    send_result_to_wire,
)
from chatconnect.runtime import wire
from chatconnect.runtime.auth import Authenticator
from chatconnect.runtime.edge import unary
from chatconnect.runtime.errors import FieldMissing
from chatconnect.runtime.guard import authenticate

Context = grpc.aio.ServicerContext[Any, Any]


class RouterServicer(pb_grpc.RouterServiceServicer):
    """Sends, receipts and inbox paging for clients without a gateway stream."""

    def __init__(
        self,
        *,
        sending: SendService,
        inbox: InboxService,
        groups: GroupReading,
        authenticator: Authenticator,
    ) -> None:
        self._sending = sending
        self._inbox = inbox
        self._groups = groups
        self._auth = authenticator

    @unary(ERRORS, "RouterService/SendMessage")
    async def SendMessage(
        self, request: pb.SendMessageRequest, context: Context
    ) -> pb.SendMessageResponse:
        caller = await authenticate(self._auth, context)
        if not request.HasField("message"):
            raise FieldMissing("message")
        result = await self._sending.send(caller, outgoing_from_wire(request.message))
        return pb.SendMessageResponse(result=send_result_to_wire(result))

    @unary(ERRORS, "RouterService/SendReceipts")
    async def SendReceipts(
        self, request: pb.SendReceiptsRequest, context: Context
    ) -> pb.SendReceiptsResponse:
        caller = await authenticate(self._auth, context)
        await self._inbox.send_receipts(
            caller,
            receipt_type=wire.enum_from_wire(ReceiptType, request.type, "type"),
            messages=received_from_wire(request.messages),
        )
        return pb.SendReceiptsResponse()

    @unary(ERRORS, "RouterService/ListInboxItems")
    async def ListInboxItems(
        self, request: pb.ListInboxItemsRequest, context: Context
    ) -> pb.ListInboxItemsResponse:
        caller = await authenticate(self._auth, context)
        page = await self._inbox.page(
            caller,
            after_sequence=decode_page_token(request.page_token),
            limit=self._inbox.page_size(request.page_size),
        )
        return pb.ListInboxItemsResponse(
            items=[wire.inbox_item_to_wire(i) for i in page.items],
            next_page_token=encode_page_token(page.next_after_sequence) if page.more else "",
        )

    @unary(ERRORS, "RouterService/AcknowledgeInboxItems")
    async def AcknowledgeInboxItems(
        self, request: pb.AcknowledgeInboxItemsRequest, context: Context
    ) -> pb.AcknowledgeInboxItemsResponse:
        caller = await authenticate(self._auth, context)
        await self._inbox.acknowledge(caller, list(request.ids))
        return pb.AcknowledgeInboxItemsResponse()

    @unary(ERRORS, "RouterService/SyncGroupLog")
    async def SyncGroupLog(
        self, request: pb.SyncGroupLogRequest, context: Context
    ) -> pb.SyncGroupLogResponse:
        caller = await authenticate(self._auth, context)
        envelopes, head = await self._groups.sync(
            caller,
            request.group_id,
            after_position=request.after_position,
            limit=self._inbox.page_size(request.page_size),
        )
        return pb.SyncGroupLogResponse(
            envelopes=[wire.envelope_to_wire(e) for e in envelopes], head_position=head
        )
