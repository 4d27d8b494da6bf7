"""Outbound frames: an envelope pushed to many streams is framed once, and every envelope,
however many came before it, goes out as its own content."""

from __future__ import annotations

import gc

from chatconnect.gateway.domain.delivery import Drained
from chatconnect.gateway.servicer import _Frames
from chatconnect.model import Conversation, DeviceAddress, Envelope, EnvelopeType, InboxGap

NOW = 1_700_000_000.0


def _envelope(n: int) -> Envelope:
    return Envelope(
        server_message_id=f"m{n}",
        sequence=n,
        type=EnvelopeType.CIPHERTEXT,
        sender=DeviceAddress("ann", 1),
        client_message_id=f"c{n}",
        destination=Conversation(user_id="ben"),
        content=f"sealed {n}".encode(),
        server_time=NOW,
        expire_time=NOW + 60,
    )


def test_one_envelope_sent_to_many_streams_is_framed_once() -> None:
    frames = _Frames(remembered=4)
    shared = _envelope(1)
    first = frames.frame(shared)
    assert all(frames.frame(shared) is first for _ in range(500))
    assert first.envelope.content == b"sealed 1"


def test_every_envelope_is_framed_with_its_own_content() -> None:
    frames = _Frames(remembered=4)
    # Envelopes made and dropped one after another: CPython reuses the ids of freed
    # objects, so a frame kept by id alone would be handed to the wrong envelope.
    for n in range(200):
        envelope = _envelope(n)
        frame = frames.frame(envelope)
        assert (frame.envelope.server_message_id, frame.envelope.content) == (
            f"m{n}",
            f"sealed {n}".encode(),
        )
        del envelope
        gc.collect(0)


def test_drained_and_gap_frames_carry_their_sequences() -> None:
    frames = _Frames()
    assert frames.frame(Drained(7)).drained.through_sequence == 7
    gap = frames.frame(InboxGap(3, 5)).gap
    assert (gap.first_sequence, gap.last_sequence) == (3, 5)
