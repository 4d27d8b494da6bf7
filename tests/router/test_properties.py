"""Send/sync invariants under random operations, against the real store and inbox domain.

A hypothesis state machine sends (sometimes retrying an earlier client message id), reads
pages of random size and acknowledges random subsets of what a device has read, while a
model tracks what every device inbox must hold. After every step each device's inbox is
walked from the start and checked for loss, duplicates, order and per-sender order.

Acknowledgements produce real delivery receipts (InboxService sends them through the real
Deliverer); the model predicts each one and the walk must find exactly those.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chatconnect.bus.inprocess import InProcessBus
from chatconnect.devices.domain.models import DeviceRecord
from chatconnect.devices.ports import DeviceDirectory
from chatconnect.model import (
    CLIENT_ENVELOPE_TYPES,
    Conversation,
    DeviceAddress,
    DeviceKind,
    Envelope,
    EnvelopeType,
    ReceiptType,
)
from chatconnect.router.config import RouterConfig
from chatconnect.router.domain.envelopes import new_server_message_id
from chatconnect.router.domain.inbox import InboxService
from chatconnect.router.domain.models import Delivery, PendingSend
from chatconnect.router.domain.sending import Deliverer
from chatconnect.router.embedded import SqliteMessageStore
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database
from tests.router.builders import embedded_group_reading

T = TypeVar("T")

NOW = 1_700_000_000.0
WALK_PAGE = 7
ACCOUNTS = {"ann": (1, 2), "ben": (1, 2), "cat": (1,)}
DEVICES = [DeviceAddress(user, device) for user, ids in ACCOUNTS.items() for device in ids]


class DictDirectory(DeviceDirectory):
    """A DeviceDirectory over a dict (a test double of the port)."""

    def __init__(self, accounts: dict[str, tuple[int, ...]]) -> None:
        self._devices = {
            user: [DeviceRecord(user, d, "inc", 1000 + d, DeviceKind.PHONE, b"", NOW, NOW)
                   for d in ids]
            for user, ids in accounts.items()
        }

    async def list_devices(self, user_id: str) -> list[DeviceRecord]:
        return list(self._devices.get(user_id, []))

    async def identity_key(self, user_id: str) -> bytes | None:
        return b"key" if user_id in self._devices else None

    async def is_current(self, device: DeviceAddress, incarnation: str) -> bool:
        return any(r.device_id == device.device_id and r.incarnation == incarnation
                   for r in self._devices.get(device.user_id, []))


@dataclass(frozen=True)
class ExpectedReceipt:
    recipient: DeviceAddress
    by: DeviceAddress
    ids: frozenset[str]


class InboxMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory()
        self._loop = asyncio.new_event_loop()
        self._db = self._run(Database.open(Path(self._tmp.name) / "db.sqlite",
                                           migrations=MIGRATIONS, synchronous="NORMAL"))
        self.store = SqliteMessageStore(self._db)
        self.deliverer = Deliverer(store=self.store, bus=InProcessBus())
        self.inbox = InboxService(
            store=self.store, directory=DictDirectory(ACCOUNTS), deliverer=self.deliverer,
            groups=embedded_group_reading(self._db, lambda: NOW),
            config=RouterConfig(), clock=lambda: NOW,
        )
        self._cmids = itertools.count(1)
        # The model.
        self.unacked: dict[DeviceAddress, dict[str, Envelope]] = defaultdict(dict)
        self.sent: dict[tuple[DeviceAddress, str], str] = {}  # (sender, cmid) -> server id
        self.order: dict[tuple[DeviceAddress, DeviceAddress], list[str]] = defaultdict(list)
        self.seen: dict[DeviceAddress, list[str]] = defaultdict(list)  # ids read, ackable
        self.cursor: dict[DeviceAddress, int] = defaultdict(int)
        self.expected_receipts: list[ExpectedReceipt] = []

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self._run(self._db.close())
        finally:
            self._loop.close()
            self._tmp.cleanup()

    # --- operations ------------------------------------------------------------------------

    @rule(sender=st.sampled_from(DEVICES), data=st.data())
    def send(self, sender: DeviceAddress, data: st.DataObject) -> None:
        recipients = data.draw(st.lists(st.sampled_from([d for d in DEVICES if d != sender]),
                                        min_size=1, max_size=4, unique=True), label="to")
        earlier = sorted(cmid for s, cmid in self.sent if s == sender)
        repeat = bool(earlier) and data.draw(st.booleans(), label="repeat")
        cmid = (data.draw(st.sampled_from(earlier), label="cmid") if repeat
                else f"c{next(self._cmids)}")
        server_message_id = new_server_message_id()
        envelope = Envelope(
            server_message_id=server_message_id, sequence=0, type=EnvelopeType.CIPHERTEXT,
            sender=sender, client_message_id=cmid,
            destination=Conversation(user_id=recipients[0].user_id),
            content=f"{sender}/{cmid}".encode(), server_time=NOW,
            expire_time=NOW + 3600,
        )
        send = PendingSend(sender, cmid, server_message_id, NOW, NOW + 3600,
                           tuple(Delivery(r, envelope) for r in recipients))
        result = self._run(self.deliverer.commit_and_push(send))
        if repeat:
            assert result.duplicate, f"a retry of {cmid} from {sender} was not a duplicate"
            assert result.server_message_id == self.sent[(sender, cmid)], (
                "a retry returned another server_message_id than the original send"
            )
            return
        assert not result.duplicate
        assert result.server_message_id == server_message_id
        self.sent[(sender, cmid)] = server_message_id
        for recipient in recipients:
            self.unacked[recipient][server_message_id] = envelope
            self.order[(recipient, sender)].append(server_message_id)

    @precondition(lambda self: any(self.seen.values()))
    @rule(data=st.data())
    def acknowledge(self, data: st.DataObject) -> None:
        device = data.draw(st.sampled_from(sorted(d for d in DEVICES if self.seen[d])),
                           label="device")
        ids = data.draw(st.lists(st.sampled_from(self.seen[device]), min_size=1, max_size=12,
                                 unique=True), label="ids")
        self._run(self.inbox.acknowledge(device, ids))
        removed = [self.unacked[device].pop(i) for i in ids if i in self.unacked[device]]
        by_sender: dict[str, set[str]] = defaultdict(set)
        for envelope in removed:
            assert envelope.sender is not None
            if (envelope.type in CLIENT_ENVELOPE_TYPES
                    and envelope.sender.user_id != device.user_id):
                by_sender[envelope.sender.user_id].add(envelope.server_message_id)
        for user, message_ids in by_sender.items():
            for device_id in ACCOUNTS[user]:
                self.expected_receipts.append(ExpectedReceipt(
                    DeviceAddress(user, device_id), device, frozenset(message_ids)))
        acked = set(ids)
        self.seen[device] = [i for i in self.seen[device] if i not in acked]

    @rule(device=st.sampled_from(DEVICES), size=st.integers(1, 50), restart=st.booleans())
    def read_page(self, device: DeviceAddress, size: int, restart: bool) -> None:
        after = 0 if restart else self.cursor[device]
        page = self._run(self.inbox.page(device, after_sequence=after, limit=size))
        assert len(page.items) <= size
        assert page.more == (len(page.items) == size)
        previous = after
        for item in page.items:
            assert isinstance(item, Envelope), f"unexpected {item!r} (nothing expires here)"
            assert item.sequence > previous, "a page is not in strictly increasing order"
            previous = item.sequence
            assert item.server_message_id in self.unacked[device], (
                f"{device} read {item.server_message_id}, which it already acknowledged "
                "or was never sent to it"
            )
            if item.server_message_id not in self.seen[device]:
                self.seen[device].append(item.server_message_id)
        assert page.next_after_sequence == previous
        self.cursor[device] = page.next_after_sequence

    # --- invariants ------------------------------------------------------------------------

    def _walk(self, device: DeviceAddress) -> list[Envelope]:
        items: list[Envelope] = []
        after = 0
        while True:
            page = self._run(self.inbox.page(device, after_sequence=after, limit=WALK_PAGE))
            for item in page.items:
                assert isinstance(item, Envelope)
                items.append(item)
            after = page.next_after_sequence
            if not page.more:
                return items

    def _match_receipt(self, device: DeviceAddress, envelope: Envelope) -> None:
        assert envelope.type == EnvelopeType.RECEIPT and envelope.receipt is not None, (
            f"{device} holds {envelope.server_message_id} that nobody sent to it"
        )
        receipt = envelope.receipt
        assert receipt.type == ReceiptType.DELIVERED
        assert envelope.sender == receipt.by
        expected = ExpectedReceipt(device, receipt.by, frozenset(receipt.server_message_ids))
        assert len(receipt.server_message_ids) == len(expected.ids), "a receipt repeats an id"
        assert expected in self.expected_receipts, f"unexpected receipt {receipt!r}"
        self.expected_receipts.remove(expected)
        self.unacked[device][envelope.server_message_id] = envelope

    @invariant()
    def every_inbox_is_complete_ordered_and_duplicate_free(self) -> None:
        for device in DEVICES:
            walk = self._walk(device)
            ids = [e.server_message_id for e in walk]
            assert len(ids) == len(set(ids)), f"{device} got a server_message_id twice"
            sequences = [e.sequence for e in walk]
            assert sequences == sorted(set(sequences)), "sequences are not strictly increasing"
            for envelope in walk:
                if envelope.server_message_id not in self.unacked[device]:
                    self._match_receipt(device, envelope)
                else:
                    known = self.unacked[device][envelope.server_message_id]
                    assert envelope.content == known.content
                    assert envelope.sender == known.sender
                    assert envelope.client_message_id == known.client_message_id
            missing = set(self.unacked[device]) - set(ids)
            assert not missing, f"{device} lost unacknowledged envelopes {sorted(missing)}"
            for sender in DEVICES:
                from_sender = [e.server_message_id for e in walk
                               if e.sender == sender and e.type in CLIENT_ENVELOPE_TYPES]
                in_send_order = [i for i in self.order[(device, sender)]
                                 if i in self.unacked[device]]
                assert from_sender == in_send_order, (
                    f"{sender}'s messages to {device} are out of send order"
                )
        assert not self.expected_receipts, f"receipts never arrived: {self.expected_receipts}"

    @invariant()
    def one_send_per_client_message_id(self) -> None:
        for (sender, cmid), server_message_id in self.sent.items():
            found = self._run(self.store.find_send(sender, cmid))
            assert found is not None
            assert found.server_message_id == server_message_id


InboxMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestInboxInvariants = InboxMachine.TestCase
