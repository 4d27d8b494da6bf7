"""Large-group sends in the router's domain, on the embedded stores: what a sender and the
members observe when the member devices cannot be read after the message is durable, and
how sender-key distributions are checked against the members they address.

The message store, the group log and the bus are the real embedded ones; the group and
device directories are fixed test doubles of their ports, so that a read can be made to
fail at a chosen moment.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatconnect.bus.inprocess import InProcessBus
from chatconnect.bus.ports import InboxChanged, Subscription
from chatconnect.devices.domain.models import DeviceRecord
from chatconnect.devices.ports import DeviceDirectory
from chatconnect.groups.config import GroupsConfig
from chatconnect.groups.domain.models import GroupMembership, GroupRole, GroupSettings
from chatconnect.groups.ports import GroupDirectory
from chatconnect.model import Conversation, DeviceAddress, DeviceKind, EnvelopeType
from chatconnect.router.config import RouterConfig
from chatconnect.router.domain.errors import DeviceListMismatchError, NotAParticipant
from chatconnect.router.domain.group_sending import GroupSender
from chatconnect.router.domain.models import DeviceCiphertext, OutgoingMessage
from chatconnect.router.embedded import SqliteMessageStore
from chatconnect.router.group_log_embedded import SqliteGroupLog
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.storage.embedded_schema import MIGRATIONS
from chatconnect.storage.sqlite import Database

NOW = 1_700_000_000.0
MEMBERS = ["ann", "ben", "cat", "dan", "eve"]
GROUP = "g-large"
VERSION = 7
SENDER = DeviceAddress("ann", 1)
LARGE = GroupsConfig(fan_out_on_read_threshold=3)
"""Every group of more than three members is stored once in its log."""


class FixedGroups(GroupDirectory):
    """One group with a fixed membership (a test double of the port)."""

    def __init__(self, membership: GroupMembership) -> None:
        self._membership = membership

    async def membership_version(self, group_id: str) -> int | None:
        return self._membership.membership_version if group_id == GROUP else None

    async def membership(self, group_id: str) -> GroupMembership | None:
        return self._membership if group_id == GROUP else None


class Devices(DeviceDirectory):
    """One device per user, registration id 100; reads of more than `readable` users at
    once fail as an unreachable store would (a test double of the port)."""

    def __init__(self, users: Sequence[str], *, readable: int) -> None:
        self._devices = {
            u: [DeviceRecord(u, 1, "inc", 100, DeviceKind.PHONE, b"", NOW, NOW)] for u in users
        }
        self._readable = readable
        self.bulk_reads: list[list[str]] = []

    async def list_devices(self, user_id: str) -> list[DeviceRecord]:
        return list(self._devices.get(user_id, []))

    async def list_devices_of(self, user_ids: Sequence[str]) -> dict[str, list[DeviceRecord]]:
        self.bulk_reads.append(list(user_ids))
        if len(user_ids) > self._readable:
            raise StoreUnavailable("the device store did not answer")
        return await super().list_devices_of(user_ids)

    async def identity_key(self, user_id: str) -> bytes | None:
        return b"key" if user_id in self._devices else None

    async def is_current(self, device: DeviceAddress, incarnation: str) -> bool:
        return device.user_id in self._devices


@dataclass
class Setup:
    sender: GroupSender
    log: SqliteGroupLog
    devices: Devices
    bus: InProcessBus


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = await Database.open(tmp_path / "db.sqlite", migrations=MIGRATIONS, synchronous="NORMAL")
    yield db
    await db.close()


def _setup(db: Database, devices: Devices) -> Setup:
    membership = GroupMembership(
        group_id=GROUP,
        membership_version=VERSION,
        settings=GroupSettings(),
        roles={u: GroupRole.MEMBER for u in MEMBERS},
    )
    log, bus = SqliteGroupLog(db), InProcessBus()
    sender = GroupSender(
        store=SqliteMessageStore(db),
        log=log,
        groups=FixedGroups(membership),
        directory=devices,
        bus=bus,
        config=RouterConfig(),
        groups_config=LARGE,
        clock=lambda: NOW,
    )
    return Setup(sender, log, devices, bus)


def _message(cmid: str, *ciphertexts: DeviceCiphertext) -> OutgoingMessage:
    return OutgoingMessage(
        client_message_id=cmid,
        destination=Conversation(group_id=GROUP),
        ciphertexts=ciphertexts,
        group_membership_version=VERSION,
        group_content=b"sealed once for the group",
    )


def _distribution(user_id: str, registration_id: int = 100) -> DeviceCiphertext:
    return DeviceCiphertext(
        DeviceAddress(user_id, 1),
        registration_id,
        EnvelopeType.SENDER_KEY_DISTRIBUTION,
        b"sealed sender key",
    )


async def _pushed(subscription: Subscription) -> list[InboxChanged]:
    """The events waiting for a subscriber (without waiting for more)."""
    events: list[InboxChanged] = []
    iterator = subscription.__aiter__()
    while True:
        try:
            event = await asyncio.wait_for(iterator.__anext__(), 0.2)
        except TimeoutError:
            return events
        assert isinstance(event, InboxChanged)
        events.append(event)


async def test_a_message_durable_in_the_log_is_sent_even_if_member_devices_cannot_be_read(
    database: Database,
) -> None:
    setup = _setup(database, Devices(MEMBERS, readable=1))
    online = await setup.bus.subscribe(DeviceAddress("ben", 1))
    cmid = uuid.uuid4().hex

    result = await setup.sender.send(SENDER, _message(cmid), "srv-1")

    # The sender is told it was sent, and members find it by syncing the log...
    assert not result.duplicate and result.server_message_id == "srv-1"
    stored = await setup.log.read(GROUP, after_position=0, limit=10, now=NOW)
    assert [(e.server_message_id, e.content) for e in stored] == [
        ("srv-1", b"sealed once for the group")
    ]
    # ...but nobody is pushed anything, since nobody's devices could be found.
    assert await _pushed(online) == []
    # A retry is recognised and stores nothing twice.
    again = await setup.sender.send(SENDER, _message(cmid), "srv-2")
    assert (again.duplicate, again.server_message_id) == (True, "srv-1")
    assert len(await setup.log.read(GROUP, after_position=0, limit=10, now=NOW)) == 1


async def test_a_message_is_pushed_to_every_connected_member_device_but_the_sender(
    database: Database,
) -> None:
    setup = _setup(database, Devices(MEMBERS, readable=len(MEMBERS)))
    ben, sender_itself = (
        await setup.bus.subscribe(DeviceAddress("ben", 1)),
        await setup.bus.subscribe(SENDER),
    )

    await setup.sender.send(SENDER, _message(uuid.uuid4().hex), "srv-1")

    [event] = await _pushed(ben)
    assert event.envelope is not None
    assert (event.envelope.server_message_id, event.envelope.group_log_position) == ("srv-1", 1)
    assert await _pushed(sender_itself) == []


async def test_distributions_are_checked_against_the_addressed_members_only(
    database: Database,
) -> None:
    setup = _setup(database, Devices(MEMBERS, readable=len(MEMBERS)))

    with pytest.raises(NotAParticipant):
        await setup.sender.send(SENDER, _message("c1", _distribution("stranger")), "srv-1")
    with pytest.raises(DeviceListMismatchError) as stale:
        await setup.sender.send(
            SENDER, _message("c2", _distribution("ben"), _distribution("cat", 99)), "srv-2"
        )
    [mismatch] = stale.value.mismatches
    assert (mismatch.user_id, mismatch.stale, mismatch.extra) == ("cat", (1,), ())
    # Refused sends store nothing; the check read only the users addressed.
    assert await setup.log.read(GROUP, after_position=0, limit=10, now=NOW) == []
    assert sorted(setup.devices.bulk_reads[-1]) == ["ben", "cat"]

    await setup.sender.send(SENDER, _message("c3", _distribution("ben")), "srv-3")
    assert len(await setup.log.read(GROUP, after_position=0, limit=10, now=NOW)) == 1
