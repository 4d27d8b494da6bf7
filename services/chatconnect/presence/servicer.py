"""PresenceService over gRPC: protobuf to domain and back, errors to statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from chatconnect.model import Conversation
from chatconnect.presence import wire as presence_wire
from chatconnect.presence.domain import errors
from chatconnect.presence.domain.models import PresenceState, Subscription, TypingState
from chatconnect.presence.domain.presence import PresenceService
from chatconnect.presence.domain.subscribing import SubscriptionService
from chatconnect.presence.domain.typing import TypingService
from chatconnect.presence.v1 import presence_pb2
from chatconnect.presence.v1 import presence_service_pb2 as pb
from chatconnect.presence.v1 import presence_service_pb2_grpc as pb_grpc
from chatconnect.runtime import wire
from chatconnect.runtime.auth import Authenticator
from chatconnect.runtime.edge import ErrorTable, WireError, limit_details, stream, unary
from chatconnect.runtime.guard import authenticate

Code = grpc.StatusCode
Context = grpc.aio.ServicerContext[Any, Any]

ERRORS = ErrorTable(
    "presence.chatconnect",
    {
        errors.UserIdInvalid: WireError(Code.INVALID_ARGUMENT, "USER_ID_INVALID"),
        errors.StateInvalid: WireError(Code.INVALID_ARGUMENT, "STATE_INVALID"),
        errors.ConversationMissing: WireError(Code.INVALID_ARGUMENT, "CONVERSATION_MISSING"),
        errors.TooManySubscriptions: WireError(
            Code.RESOURCE_EXHAUSTED, "TOO_MANY_SUBSCRIPTIONS", limit_details
        ),
        errors.TooManyTypingConversations: WireError(
            Code.RESOURCE_EXHAUSTED, "TOO_MANY_TYPING_CONVERSATIONS", limit_details
        ),
        errors.TooManyUsers: WireError(Code.RESOURCE_EXHAUSTED, "TOO_MANY_USERS", limit_details),
        errors.NotAParticipant: WireError(Code.PERMISSION_DENIED, "NOT_A_PARTICIPANT"),
        errors.NoOpenSubscription: WireError(Code.FAILED_PRECONDITION, "NO_OPEN_SUBSCRIPTION"),
        errors.SubscriptionReplaced: WireError(Code.ABORTED, "SUBSCRIPTION_REPLACED"),
    },
)


def _conversations(subscription: presence_pb2.PresenceSubscription) -> list[Conversation]:
    return [wire.conversation_from_wire(c) for c in subscription.conversations]


def _state(value: int) -> PresenceState:
    try:
        return PresenceState(value)
    except ValueError:
        raise errors.StateInvalid("state", f"unknown presence state {value}") from None


def _typing_state(value: int) -> TypingState:
    try:
        return TypingState(value)
    except ValueError:
        raise errors.StateInvalid("state", f"unknown typing state {value}") from None


class PresenceServicer(pb_grpc.PresenceServiceServicer):
    """Online state, last seen, subscriptions and typing."""

    def __init__(
        self,
        *,
        presence: PresenceService,
        subscriptions: SubscriptionService,
        typing: TypingService,
        authenticator: Authenticator,
    ) -> None:
        self._presence = presence
        self._subscriptions = subscriptions
        self._typing = typing
        self._auth = authenticator

    @stream(ERRORS, "PresenceService/Subscribe")
    async def Subscribe(
        self, request: pb.SubscribeRequest, context: Context
    ) -> AsyncIterator[pb.SubscribeResponse]:
        caller = await authenticate(self._auth, context)
        subscription = await self._subscriptions.check(
            caller,
            list(request.subscription.user_ids),
            _conversations(request.subscription),
        )
        async for frame in self._subscriptions.subscribe(caller, subscription):
            yield presence_wire.frame_to_wire(frame)

    @unary(ERRORS, "PresenceService/UpdateSubscription")
    async def UpdateSubscription(
        self, request: pb.UpdateSubscriptionRequest, context: Context
    ) -> pb.UpdateSubscriptionResponse:
        caller = await authenticate(self._auth, context)
        subscription: Subscription = await self._subscriptions.check(
            caller,
            list(request.subscription.user_ids),
            _conversations(request.subscription),
        )
        in_force = await self._subscriptions.update(
            caller, subscription, request_id=request.request_id
        )
        return pb.UpdateSubscriptionResponse(
            subscription=presence_wire.subscription_to_wire(in_force)
        )

    @unary(ERRORS, "PresenceService/GetPresence")
    async def GetPresence(
        self, request: pb.GetPresenceRequest, context: Context
    ) -> pb.GetPresenceResponse:
        caller = await authenticate(self._auth, context)
        views = await self._subscriptions.get(caller, list(request.user_ids))
        return pb.GetPresenceResponse(presences=[presence_wire.view_to_wire(v) for v in views])

    @unary(ERRORS, "PresenceService/UpdatePresence")
    async def UpdatePresence(
        self, request: pb.UpdatePresenceRequest, context: Context
    ) -> pb.UpdatePresenceResponse:
        caller = await authenticate(self._auth, context)
        device = await self._presence.update_state(
            caller, _state(request.state), request_id=request.request_id
        )
        return pb.UpdatePresenceResponse(
            presence=presence_wire.own_device_to_wire(caller.device_id, device)
        )

    @unary(ERRORS, "PresenceService/SendTyping")
    async def SendTyping(
        self, request: pb.SendTypingRequest, context: Context
    ) -> pb.SendTypingResponse:
        caller = await authenticate(self._auth, context)
        if not request.HasField("conversation"):
            raise errors.ConversationMissing("conversation")
        expire_at = await self._typing.send(
            caller,
            wire.conversation_from_wire(request.conversation),
            _typing_state(request.state),
            request_id=request.request_id,
        )
        return pb.SendTypingResponse(expire_time=wire.timestamp(expire_at))
