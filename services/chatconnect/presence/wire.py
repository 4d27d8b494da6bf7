"""Presence domain types to and from protobuf."""

from __future__ import annotations

from chatconnect.common.v1 import common_pb2
from chatconnect.model import Conversation, DeviceKind, system_clock
from chatconnect.presence.domain.models import (
    DevicePresence,
    GroupTyping,
    PresenceState,
    PresenceView,
    Subscription,
    TypingIndicator,
)
from chatconnect.presence.domain.streams import Frame
from chatconnect.presence.v1 import presence_pb2
from chatconnect.presence.v1 import presence_service_pb2 as pb
from chatconnect.runtime import wire


def _device(device: DevicePresence, *, last_active_shown: bool) -> presence_pb2.DevicePresence:
    message = presence_pb2.DevicePresence(
        device_id=device.device_id,
        kind=int(device.kind),  # type: ignore[arg-type]
        state=int(device.state),  # type: ignore[arg-type]
    )
    # Empty while ONLINE (it would only say "now"), and when last seen is hidden.
    if last_active_shown and device.state != PresenceState.ONLINE:
        message.last_active_time.CopyFrom(wire.timestamp(device.last_active))
    return message


def own_device_to_wire(
    device_id: int, device: DevicePresence | None
) -> presence_pb2.DevicePresence:
    """The caller's own device; None means it holds no stream (OFFLINE)."""
    if device is None:
        return presence_pb2.DevicePresence(
            device_id=device_id,
            kind=int(DeviceKind.UNSPECIFIED),  # type: ignore[arg-type]
            state=int(PresenceState.OFFLINE),  # type: ignore[arg-type]
        )
    return _device(device, last_active_shown=True)


def view_to_wire(view: PresenceView) -> presence_pb2.UserPresence:
    """A user's presence as the caller may see it."""
    message = presence_pb2.UserPresence(
        user_id=view.user_id,
        state=int(view.state),  # type: ignore[arg-type]
        devices=[_device(d, last_active_shown=view.last_active_shown) for d in view.devices],
        update_time=wire.timestamp(view.computed_at),
    )
    if view.last_seen is not None:
        message.last_seen_time.CopyFrom(wire.timestamp(view.last_seen))
    return message


def subscription_to_wire(subscription: Subscription) -> presence_pb2.PresenceSubscription:
    """The subscription in force."""
    return presence_pb2.PresenceSubscription(
        user_ids=list(subscription.user_ids),
        conversations=[wire.conversation_to_wire(c) for c in subscription.conversations],
    )


def _typing(indicator: TypingIndicator) -> presence_pb2.TypingIndicator:
    return presence_pb2.TypingIndicator(
        conversation=wire.conversation_to_wire(Conversation(user_id=indicator.sender.user_id)),
        device=common_pb2.DeviceAddress(
            user_id=indicator.sender.user_id, device_id=indicator.sender.device_id
        ),
        state=int(indicator.state),  # type: ignore[arg-type]
        expire_time=wire.timestamp(indicator.expire_at),
    )


def _group_typing(summary: GroupTyping) -> presence_pb2.GroupTyping:
    return presence_pb2.GroupTyping(
        group_id=summary.group_id,
        typing_count=summary.typing_count,
        recording_count=summary.recording_count,
        typing_user_ids=list(summary.typing_user_ids),
        expire_time=wire.timestamp(summary.expire_at),
    )


def frame_to_wire(frame: Frame | Subscription) -> pb.SubscribeResponse:
    """One frame of a Subscribe stream (a Subscription is the SubscriptionStarted)."""
    if isinstance(frame, Subscription):
        return pb.SubscribeResponse(
            started=presence_pb2.SubscriptionStarted(
                subscription=subscription_to_wire(frame),
                server_time=wire.timestamp(system_clock()),
            )
        )
    if isinstance(frame, PresenceView):
        return pb.SubscribeResponse(presence=view_to_wire(frame))
    if isinstance(frame, TypingIndicator):
        return pb.SubscribeResponse(typing=_typing(frame))
    return pb.SubscribeResponse(group_typing=_group_typing(frame))
