"""Cost of one Redis bus message carrying a group message to many devices.

A group message pushed to the online members on another gateway travels as one bus
message listing every device. This times its encoding (on the sending gateway) and
decoding (on the receiving one) and prints its size, without Redis: only the codec.

    .venv/bin/python bench/bus_codec.py --devices 500 --content-bytes 300
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from chatconnect.bus.ports import InboxChanged
from chatconnect.bus.redis import _decode, _encode
from chatconnect.model import Conversation, DeviceAddress, Envelope, EnvelopeType


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--content-bytes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    envelope = Envelope(
        server_message_id="01JBENCHMARKSERVERMESSAGE0",
        sequence=0,
        type=EnvelopeType.CIPHERTEXT,
        sender=DeviceAddress("01JBENCHMARKSENDERUSERID00", 1),
        client_message_id="01JBENCHMARKCLIENTMESSAGE0",
        destination=Conversation(group_id="01JBENCHMARKGROUPID0000000"),
        content=os.urandom(args.content_bytes),
        server_time=time.time(),
        expire_time=time.time() + 30 * 86400,
        group_log_position=12345,
    )
    events = [
        InboxChanged(DeviceAddress(f"01JBENCHMARKMEMBER{i:08d}", 1), 0, envelope)
        for i in range(args.devices)
    ]
    payload = _encode(events)
    print(f"bus_codec: {args.devices} devices, {args.content_bytes}-byte content", flush=True)
    encode = timeit.timeit(lambda: _encode(events), number=args.rounds) / args.rounds
    decode = timeit.timeit(lambda: _decode(payload), number=args.rounds) / args.rounds
    print(f"bus_codec: message {len(payload):,} bytes")
    print(f"bus_codec: encode {encode * 1e3:.2f} ms, decode {decode * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
