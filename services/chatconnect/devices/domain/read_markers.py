"""Read markers: per account and conversation, "read up to here", merged monotonically so
that every device of the account computes the same unread count."""

from __future__ import annotations

from collections.abc import Sequence

from chatconnect.devices.config import DevicesConfig
from chatconnect.devices.domain.errors import TooManyMarkers
from chatconnect.devices.domain.models import ReadMarker, conversation_key
from chatconnect.devices.domain.paging import (
    decode_marker_token,
    encode_marker_token,
    page_size,
)
from chatconnect.devices.domain.validation import check_conversation, check_id
from chatconnect.devices.ports import ReadMarkerStore
from chatconnect.model import Clock, DeviceAddress, NoticeType
from chatconnect.router.domain.notices import NoticeService
from chatconnect.runtime.errors import FieldInvalid, FieldMissing
from chatconnect.users.domain.registration import check_request_id


class ReadMarkerService:
    """Moves and lists an account's read markers, and tells its other devices."""

    def __init__(
        self,
        *,
        store: ReadMarkerStore,
        notices: NoticeService,
        config: DevicesConfig,
        clock: Clock,
    ) -> None:
        self._store = store
        self._notices = notices
        self._config = config
        self._clock = clock

    async def update(
        self, caller: DeviceAddress, *, request_id: str, markers: Sequence[ReadMarker]
    ) -> list[ReadMarker]:
        """Moves the markers forward; returns the stored ones (a marker already further
        stays where it is). Repeating a request changes nothing more."""
        check_request_id(request_id)
        if not markers:
            raise FieldMissing("markers")
        limit = self._config.max_markers_per_request
        if len(markers) > limit:
            raise TooManyMarkers(
                "markers",
                setting="devices.max_markers_per_request",
                limit=limit,
                actual=len(markers),
            )
        now = self._clock()
        for index, marker in enumerate(markers):
            self._check(marker, f"markers[{index}]", now=now)
        # Two markers of one conversation in one request: the further one is the request.
        furthest: dict[str, ReadMarker] = {}
        for marker in markers:
            key = conversation_key(marker.conversation)
            if key not in furthest or marker.position > furthest[key].position:
                furthest[key] = marker
        wanted = list(furthest.values())
        stored = await self._store.advance(caller.user_id, wanted)
        # Tell the other devices whenever the caller's markers are the ones in force: moved
        # now, or by an earlier try of this request that may have failed before telling.
        if any(s.position == w.position for s, w in zip(stored, wanted, strict=True)):
            await self._notices.own_account_changed(
                NoticeType.READ_MARKERS_CHANGED, [caller.user_id], except_device=caller
            )
        return stored

    def _check(self, marker: ReadMarker, name: str, *, now: float) -> None:
        check_conversation(marker.conversation, f"{name}.conversation", self._config)
        check_id(
            marker.read_through_server_message_id,
            f"{name}.read_through_server_message_id",
            self._config,
        )
        if marker.read_through_time <= 0:
            raise FieldMissing(f"{name}.read_through_time")
        if marker.read_through_time > now + self._config.marker_clock_skew_seconds:
            raise FieldInvalid(
                f"{name}.read_through_time",
                "is in the future; use the server_time of the newest message read",
            )

    async def list_markers(
        self, caller: DeviceAddress, *, requested_page_size: int, page_token: str
    ) -> tuple[list[ReadMarker], str]:
        """One page of the account's markers, in conversation order, and the token of the
        next page ("" on the last)."""
        limit = page_size(
            requested_page_size,
            default=self._config.marker_page_size,
            maximum=self._config.max_marker_page_size,
        )
        after = decode_marker_token(page_token)
        found = await self._store.list_markers(
            caller.user_id, after_conversation_key=after, limit=limit + 1
        )
        page = found[:limit]
        more = len(found) > limit
        return page, encode_marker_token(conversation_key(page[-1].conversation)) if more else ""
