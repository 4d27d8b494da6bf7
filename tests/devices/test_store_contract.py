"""The contract of the DeviceStore port, written once and run against every adapter.

The adapters and the `backend` fixture are in tests/devices/backends.py, shared with the
KeyStore contract.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from chatconnect.devices.domain.errors import (
    DeviceLimitReached,
    LinkAlreadyApproved,
    LinkCodeNotFound,
    LinkNotApproved,
)
from chatconnect.devices.domain.models import LinkRequest
from chatconnect.devices.ports import DeviceStore
from chatconnect.model import DeviceAddress, DeviceKind
from tests.devices.backends import (
    ALICE,
    ALICE_PRIMARY,
    BOB,
    LINK_TTL,
    NOW,
    Backend,
    approve,
    device_ids,
    identity_key,
    link_device,
    link_request,
    new_device,
)


@pytest.fixture
def store(backend: Backend) -> DeviceStore:
    return backend.devices


async def test_an_unknown_account_has_no_devices_and_no_identity_key(store: DeviceStore) -> None:
    assert await store.list_devices("nobody") == []
    assert await store.identity_key("nobody") is None
    assert not await store.is_current(DeviceAddress("nobody", 1), "nobody-primary")


async def test_a_seeded_account_has_its_primary_device_and_identity_key(
    store: DeviceStore,
) -> None:
    [primary] = await store.list_devices(ALICE)
    assert primary.user_id == ALICE and primary.device_id == 1 and primary.primary
    assert primary.incarnation == "alice-primary"
    assert primary.registration_id == 1001
    assert primary.kind == DeviceKind.PHONE
    assert primary.encrypted_name == b"phone"
    assert await store.identity_key(ALICE) == identity_key(ALICE)


async def test_is_current_holds_only_for_the_current_incarnation(store: DeviceStore) -> None:
    assert await store.is_current(ALICE_PRIMARY, "alice-primary")
    assert not await store.is_current(ALICE_PRIMARY, "an-older-incarnation")
    assert not await store.is_current(DeviceAddress(ALICE, 2), "alice-primary")
    laptop = await link_device(store, device=new_device(incarnation="laptop-1"))
    assert await store.is_current(laptop, "laptop-1")
    assert not await store.is_current(laptop, "alice-primary")


async def test_devices_are_listed_in_device_id_order(store: DeviceStore) -> None:
    for _ in range(3):
        await link_device(store)
    assert await device_ids(store) == [1, 2, 3, 4]


async def test_touch_records_last_seen_and_ignores_missing_devices(store: DeviceStore) -> None:
    laptop = await link_device(store)
    await store.touch(laptop, NOW + 60)
    seen = {d.device_id: d.last_seen_at for d in await store.list_devices(ALICE)}
    assert seen == {1: NOW, laptop.device_id: NOW + 60}
    await store.touch(DeviceAddress(ALICE, 99), NOW + 60)
    await store.touch(DeviceAddress("nobody", 1), NOW + 60)
    assert await device_ids(store) == [1, laptop.device_id]
    assert await store.list_devices("nobody") == []


async def test_bulk_device_lists_follow_every_link_unlink_and_touch(backend: Backend) -> None:
    """What a send checks its addressing against: read again after each change, the
    lists show it at once (the cached adapter must forget what it kept)."""
    store = backend.devices

    async def listed() -> dict[str, list[tuple[int, float]]]:
        lists = await store.list_devices_of([ALICE, BOB, ALICE])
        return {u: [(d.device_id, d.last_seen_at) for d in ds] for u, ds in lists.items()}

    assert await listed() == {ALICE: [(1, NOW)]}
    laptop = await link_device(store)
    assert await listed() == {ALICE: [(1, NOW), (laptop.device_id, NOW)]}
    await store.touch(laptop, NOW + 60)
    assert await listed() == {ALICE: [(1, NOW), (laptop.device_id, NOW + 60)]}
    await backend.seed_account(BOB)
    assert await listed() == {ALICE: [(1, NOW), (laptop.device_id, NOW + 60)], BOB: [(1, NOW)]}
    assert await store.unlink(laptop)
    assert await listed() == {ALICE: [(1, NOW)], BOB: [(1, NOW)]}


# --- creating links -------------------------------------------------------------------------


async def test_a_created_link_is_found_by_code_and_by_secret_hash(store: DeviceStore) -> None:
    link = link_request()
    assert await store.create_link(link) == link
    assert await store.get_link(link_code=link.link_code) == link
    assert await store.get_link(secret_hash=link.secret_hash) == link


async def test_unknown_links_are_not_found(store: DeviceStore) -> None:
    await store.create_link(link_request())
    assert await store.get_link(link_code="NOSUCHCODE") is None
    assert await store.get_link(secret_hash=b"no such secret hash") is None
    assert await store.get_link() is None


async def test_a_retried_create_link_keeps_its_code_and_only_the_latest_secret(
    store: DeviceStore,
) -> None:
    first = await store.create_link(link_request())
    retry = link_request(request_id=first.request_id, ephemeral_key=first.ephemeral_key)
    again = await store.create_link(retry)
    assert again.link_code == first.link_code
    assert again.secret_hash == retry.secret_hash
    assert again.expires_at == first.expires_at
    assert await store.get_link(secret_hash=first.secret_hash) is None
    assert await store.get_link(secret_hash=retry.secret_hash) == again
    assert await store.get_link(link_code=first.link_code) == again


async def test_another_ephemeral_key_or_request_id_is_another_link(store: DeviceStore) -> None:
    first = await store.create_link(link_request())
    other_key = await store.create_link(link_request(request_id=first.request_id))
    other_request = await store.create_link(link_request(ephemeral_key=first.ephemeral_key))
    codes = {first.link_code, other_key.link_code, other_request.link_code}
    assert len(codes) == 3


async def test_concurrent_retries_of_one_create_link_share_one_code(store: DeviceStore) -> None:
    request_id, ephemeral_key = uuid.uuid4().hex, b"e" * 32
    tries = [link_request(request_id=request_id, ephemeral_key=ephemeral_key) for _ in range(8)]
    created = await asyncio.gather(*(store.create_link(t) for t in tries))
    assert len({c.link_code for c in created}) == 1
    stored = await store.get_link(link_code=created[0].link_code)
    assert stored is not None
    assert stored.secret_hash in {t.secret_hash for t in tries}
    assert await store.get_link(secret_hash=stored.secret_hash) == stored


# --- approving links ------------------------------------------------------------------------


async def test_approve_link_reserves_the_next_device_id(store: DeviceStore) -> None:
    link = await store.create_link(link_request())
    approved = await approve(store, link.link_code, request_id="approve-1")
    assert approved.approved_user_id == ALICE
    assert approved.approved_request_id == "approve-1"
    assert approved.provisioning == b"provisioning"
    assert approved.device_id == 2
    assert approved.completed_request_id is None
    assert await store.get_link(link_code=link.link_code) == approved
    assert await store.get_link(secret_hash=link.secret_hash) == approved
    # Not a device until completed.
    assert await device_ids(store) == [1]


async def test_a_repeated_approval_returns_the_same_reservation(store: DeviceStore) -> None:
    link = await store.create_link(link_request())
    first = await approve(store, link.link_code, request_id="approve-1")
    again = await approve(store, link.link_code, request_id="approve-1", max_devices=1)
    assert again == first
    other = await store.create_link(link_request())
    assert (await approve(store, other.link_code)).device_id == 3


async def test_concurrent_repeats_of_one_approval_reserve_one_device(store: DeviceStore) -> None:
    link = await store.create_link(link_request())
    approvals = await asyncio.gather(
        *(approve(store, link.link_code, request_id="approve-1", max_devices=2) for _ in range(6))
    )
    assert len({a.device_id for a in approvals}) == 1
    # Only one place is held: one more link fits under a limit of two.
    other = await store.create_link(link_request())
    await approve(store, other.link_code, max_devices=2)


async def test_approving_an_unknown_link_raises_link_code_not_found(store: DeviceStore) -> None:
    with pytest.raises(LinkCodeNotFound):
        await approve(store, "NOSUCHCODE")


async def test_a_link_approved_by_another_request_or_account_is_refused(
    backend: Backend,
) -> None:
    store = backend.devices
    await backend.seed_account(BOB)
    link = await store.create_link(link_request())
    await approve(store, link.link_code, request_id="approve-1")
    with pytest.raises(LinkAlreadyApproved):
        await approve(store, link.link_code, request_id="approve-2")
    with pytest.raises(LinkAlreadyApproved):
        await approve(store, link.link_code, user_id=BOB, request_id="approve-1")


async def test_concurrent_approvals_of_one_link_by_two_accounts_have_one_winner(
    backend: Backend,
) -> None:
    store = backend.devices
    await backend.seed_account(BOB)
    link = await store.create_link(link_request())
    outcomes = await asyncio.gather(
        approve(store, link.link_code, user_id=ALICE, max_devices=1),
        approve(store, link.link_code, user_id=BOB, max_devices=1),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if isinstance(o, LinkRequest)]
    assert len(winners) == 1
    assert sum(isinstance(o, LinkAlreadyApproved) for o in outcomes) == 1
    stored = await store.get_link(link_code=link.link_code)
    assert stored == winners[0]
    # The loser holds no place: it can still approve a link of its own under a limit of one.
    loser = BOB if winners[0].approved_user_id == ALICE else ALICE
    other = await store.create_link(link_request())
    approved = await approve(store, other.link_code, user_id=loser, max_devices=1)
    assert approved.approved_user_id == loser


# --- the device limit -----------------------------------------------------------------------


async def test_pending_approvals_and_linked_devices_count_toward_the_limit(
    store: DeviceStore,
) -> None:
    await link_device(store, max_devices=2)
    pending = await store.create_link(link_request())
    await approve(store, pending.link_code, max_devices=2)
    refused = await store.create_link(link_request())
    with pytest.raises(DeviceLimitReached) as raised:
        await approve(store, refused.link_code, max_devices=2)
    assert raised.value.metadata["limit"] == "2"
    assert raised.value.metadata["actual"] == "3"
    # The refused approval changed nothing: the link can still be approved elsewhere.
    stored = await store.get_link(link_code=refused.link_code)
    assert stored is not None and stored.approved_user_id is None


async def test_expired_pending_approvals_do_not_count(store: DeviceStore) -> None:
    pending = await store.create_link(link_request())
    await approve(store, pending.link_code, max_devices=1)
    later = NOW + LINK_TTL + 1
    fresh = await store.create_link(link_request(now=later))
    approved = await approve(store, fresh.link_code, max_devices=1, now=later)
    assert approved.device_id == 3


async def test_completed_links_count_once_as_devices(store: DeviceStore) -> None:
    await link_device(store, max_devices=2)
    await link_device(store, max_devices=2)
    refused = await store.create_link(link_request())
    with pytest.raises(DeviceLimitReached):
        await approve(store, refused.link_code, max_devices=2)


async def test_unlinking_frees_a_place_under_the_limit(store: DeviceStore) -> None:
    laptop = await link_device(store, max_devices=1)
    assert await store.unlink(laptop)
    assert await link_device(store, max_devices=1) == DeviceAddress(ALICE, laptop.device_id + 1)


async def test_concurrent_approvals_never_exceed_the_limit_and_get_distinct_ids(
    store: DeviceStore,
) -> None:
    await link_device(store, max_devices=4)
    links = [await store.create_link(link_request()) for _ in range(10)]
    outcomes = await asyncio.gather(
        *(approve(store, link.link_code, max_devices=4) for link in links),
        return_exceptions=True,
    )
    approved = [o for o in outcomes if isinstance(o, LinkRequest)]
    refused = [o for o in outcomes if isinstance(o, DeviceLimitReached)]
    assert len(approved) == 3 and len(refused) == 7
    ids = [a.device_id for a in approved]
    assert len(set(ids)) == 3 and 2 not in ids


# --- completing links -----------------------------------------------------------------------


async def test_completing_an_unknown_or_unapproved_link_is_refused(store: DeviceStore) -> None:
    with pytest.raises(LinkCodeNotFound):
        await store.complete_link("NOSUCHCODE", request_id="c", device=new_device(), now=NOW)
    link = await store.create_link(link_request())
    with pytest.raises(LinkNotApproved):
        await store.complete_link(link.link_code, request_id="c", device=new_device(), now=NOW)
    assert await device_ids(store) == [1]


async def test_complete_link_creates_the_device_with_its_keys(backend: Backend) -> None:
    store = backend.devices
    link = await store.create_link(link_request())
    await approve(store, link.link_code)
    device = new_device(incarnation="laptop-1", one_time=(5, 6, 7), name=b"my laptop")
    address = await store.complete_link(
        link.link_code, request_id="complete-1", device=device, now=NOW + 5
    )
    assert address == DeviceAddress(ALICE, 2)
    [_, laptop] = await store.list_devices(ALICE)
    assert laptop.device_id == 2 and not laptop.primary
    assert laptop.incarnation == "laptop-1"
    assert laptop.registration_id == 4242
    assert laptop.kind == DeviceKind.DESKTOP
    assert laptop.encrypted_name == b"my laptop"
    assert laptop.created_at == laptop.last_seen_at == NOW + 5
    assert await store.is_current(address, "laptop-1")
    stored = await store.get_link(link_code=link.link_code)
    assert stored is not None
    assert stored.completed_request_id == "complete-1" and stored.incarnation == "laptop-1"
    assert await backend.keys.count(address) == 3
    [bundle] = await backend.keys.take_bundles(ALICE, [2])
    assert bundle.signed_prekey == device.keys.signed_prekey
    assert bundle.identity_key == identity_key(ALICE)


async def test_a_repeated_completion_returns_the_same_device(store: DeviceStore) -> None:
    link = await store.create_link(link_request())
    await approve(store, link.link_code)
    device = new_device(incarnation="laptop-1")
    first = await store.complete_link(link.link_code, request_id="c1", device=device, now=NOW)
    again = await store.complete_link(link.link_code, request_id="c1", device=device, now=NOW)
    assert again == first
    with pytest.raises(LinkAlreadyApproved):
        await store.complete_link(link.link_code, request_id="c2", device=device, now=NOW)
    assert await device_ids(store) == [1, first.device_id]


async def test_concurrent_completions_with_one_request_id_create_one_device(
    store: DeviceStore,
) -> None:
    link = await store.create_link(link_request())
    await approve(store, link.link_code)
    device = new_device(incarnation="laptop-1")
    addresses = await asyncio.gather(
        *(
            store.complete_link(link.link_code, request_id="c1", device=device, now=NOW)
            for _ in range(6)
        )
    )
    assert set(addresses) == {DeviceAddress(ALICE, 2)}
    assert await device_ids(store) == [1, 2]


async def test_concurrent_completions_with_different_request_ids_have_one_winner(
    store: DeviceStore,
) -> None:
    link = await store.create_link(link_request())
    await approve(store, link.link_code)
    outcomes = await asyncio.gather(
        *(
            store.complete_link(link.link_code, request_id=f"c{i}", device=new_device(), now=NOW)
            for i in range(4)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(o, DeviceAddress) for o in outcomes) == 1
    assert sum(isinstance(o, LinkAlreadyApproved) for o in outcomes) == 3
    assert await device_ids(store) == [1, 2]


async def test_a_completion_retried_after_unlink_does_not_bring_the_device_back(
    store: DeviceStore,
) -> None:
    link = await store.create_link(link_request())
    await approve(store, link.link_code)
    device = new_device()
    address = await store.complete_link(link.link_code, request_id="c1", device=device, now=NOW)
    assert await store.unlink(address)
    again = await store.complete_link(link.link_code, request_id="c1", device=device, now=NOW)
    assert again == address
    assert await device_ids(store) == [1]
    assert not await store.is_current(address, device.incarnation)


# --- unlinking ------------------------------------------------------------------------------


async def test_unlink_removes_the_device_and_its_keys_once(backend: Backend) -> None:
    store, keys = backend.devices, backend.keys
    device = new_device(one_time=(1, 2, 3))
    laptop = await link_device(store, device=device)
    assert await store.unlink(laptop)
    assert await device_ids(store) == [1]
    assert not await store.is_current(laptop, device.incarnation)
    assert await keys.count(laptop) == 0
    assert [b.device_id for b in await keys.take_bundles(ALICE, [1, laptop.device_id])] == [1]
    assert not await store.unlink(laptop)


async def test_unlinking_unknown_devices_returns_false(store: DeviceStore) -> None:
    assert not await store.unlink(DeviceAddress(ALICE, 42))
    assert not await store.unlink(DeviceAddress("nobody", 1))


async def test_unlink_leaves_other_devices_and_accounts_alone(backend: Backend) -> None:
    store, keys = backend.devices, backend.keys
    await backend.seed_account(BOB)
    laptop = await link_device(store, device=new_device(one_time=(1, 2)))
    tablet = await link_device(store, device=new_device(incarnation="tablet", one_time=(1, 2)))
    bobs = await link_device(store, BOB, device=new_device(one_time=(1, 2)))
    assert await store.unlink(laptop)
    assert await device_ids(store) == [1, tablet.device_id]
    assert await device_ids(store, BOB) == [1, bobs.device_id]
    assert await store.is_current(tablet, "tablet")
    assert await keys.count(tablet) == 2 and await keys.count(bobs) == 2
    assert await store.identity_key(ALICE) == identity_key(ALICE)


async def test_concurrent_unlinks_report_true_once(store: DeviceStore) -> None:
    laptop = await link_device(store)
    outcomes = await asyncio.gather(*(store.unlink(laptop) for _ in range(5)))
    assert sorted(outcomes) == [False, False, False, False, True]
    assert await device_ids(store) == [1]


async def test_device_ids_are_never_reused_after_unlink(store: DeviceStore) -> None:
    laptop = await link_device(store)
    assert await store.unlink(laptop)
    again = await link_device(store)
    assert again.device_id == laptop.device_id + 1
