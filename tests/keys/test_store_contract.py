"""The contract of the KeyStore port, written once and run against every adapter.

The backends (adapter factories, account seeding, linking builders) are shared with the
DeviceStore contract (tests/devices/backends.py): keys belong to devices, which are linked
through that port.
"""

from __future__ import annotations

import asyncio

import pytest

from chatconnect.keys.domain.models import PreKey, PreKeyBundle, SignedPreKey
from chatconnect.keys.ports import KeyStore
from chatconnect.model import DeviceAddress
from tests.devices.backends import (
    ALICE,
    ALICE_PRIMARY,
    BOB,
    NOW,
    Backend,
    approve,
    identity_key,
    link_device,
    link_request,
    new_device,
)

MAX_STORED = 1000


@pytest.fixture
def keys(backend: Backend) -> KeyStore:
    return backend.keys


def prekeys(*ids: int, tag: str = "a") -> list[PreKey]:
    return [PreKey(i, f"otk-{tag}-{i}".encode()) for i in ids]


def one_time_ids(bundles: list[PreKeyBundle]) -> list[int | None]:
    return [b.one_time_prekey.key_id if b.one_time_prekey else None for b in bundles]


# --- one-time prekeys -----------------------------------------------------------------------


async def test_a_device_without_uploads_has_no_one_time_prekeys(keys: KeyStore) -> None:
    assert await keys.count(ALICE_PRIMARY) == 0
    assert await keys.count(DeviceAddress("nobody", 1)) == 0


async def test_add_prekeys_returns_how_many_the_device_has(keys: KeyStore) -> None:
    assert await keys.add_prekeys(ALICE_PRIMARY, prekeys(1, 2, 3), max_stored=MAX_STORED) == 3
    assert await keys.add_prekeys(ALICE_PRIMARY, prekeys(4, 5), max_stored=MAX_STORED) == 5
    assert await keys.count(ALICE_PRIMARY) == 5
    assert await keys.add_prekeys(ALICE_PRIMARY, [], max_stored=MAX_STORED) == 5


async def test_ids_already_stored_are_ignored(keys: KeyStore) -> None:
    await keys.add_prekeys(ALICE_PRIMARY, prekeys(1, 2), max_stored=MAX_STORED)
    count = await keys.add_prekeys(ALICE_PRIMARY, prekeys(2, 3, tag="b"), max_stored=MAX_STORED)
    assert count == 3
    taken = [await keys.take_bundles(ALICE, [1]) for _ in range(3)]
    assert [b.one_time_prekey for [b] in taken] == [
        PreKey(1, b"otk-a-1"),
        PreKey(2, b"otk-a-2"),
        PreKey(3, b"otk-b-3"),
    ]


async def test_a_repeated_id_in_one_upload_is_stored_once(keys: KeyStore) -> None:
    upload = [PreKey(1, b"first"), PreKey(1, b"second"), PreKey(2, b"other")]
    assert await keys.add_prekeys(ALICE_PRIMARY, upload, max_stored=MAX_STORED) == 2
    [bundle] = await keys.take_bundles(ALICE, [1])
    assert bundle.one_time_prekey == PreKey(1, b"first")


async def test_add_prekeys_never_keeps_more_than_max_stored(keys: KeyStore) -> None:
    assert await keys.add_prekeys(ALICE_PRIMARY, prekeys(*range(1, 9)), max_stored=5) == 5
    assert await keys.add_prekeys(ALICE_PRIMARY, prekeys(20, 21), max_stored=5) == 5
    assert await keys.count(ALICE_PRIMARY) == 5
    taken = [await keys.take_bundles(ALICE, [1]) for _ in range(6)]
    assert [i for [b] in taken for i in one_time_ids([b])] == [1, 2, 3, 4, 5, None]


async def test_concurrent_uploads_never_exceed_max_stored(keys: KeyStore) -> None:
    uploads = [prekeys(*range(10 * u, 10 * u + 4)) for u in range(1, 7)]
    counts = await asyncio.gather(
        *(keys.add_prekeys(ALICE_PRIMARY, u, max_stored=10) for u in uploads)
    )
    assert await keys.count(ALICE_PRIMARY) == 10
    assert max(counts) == 10


async def test_a_handed_out_id_can_be_uploaded_again(keys: KeyStore) -> None:
    await keys.add_prekeys(ALICE_PRIMARY, prekeys(1), max_stored=MAX_STORED)
    await keys.take_bundles(ALICE, [1])
    assert await keys.add_prekeys(ALICE_PRIMARY, prekeys(1, tag="new"), max_stored=MAX_STORED) == 1
    [bundle] = await keys.take_bundles(ALICE, [1])
    assert bundle.one_time_prekey == PreKey(1, b"otk-new-1")


# --- bundles --------------------------------------------------------------------------------


async def test_a_bundle_has_the_device_keys_and_consumes_the_lowest_one_time_prekey(
    keys: KeyStore,
) -> None:
    await keys.add_prekeys(ALICE_PRIMARY, prekeys(3, 1, 2), max_stored=MAX_STORED)
    [bundle] = await keys.take_bundles(ALICE, [1])
    assert bundle == PreKeyBundle(
        device_id=1,
        registration_id=1001,
        identity_key=identity_key(ALICE),
        signed_prekey=SignedPreKey(1, b"spk-alice-1", b"signature"),
        one_time_prekey=PreKey(1, b"otk-a-1"),
    )
    assert await keys.count(ALICE_PRIMARY) == 2


async def test_set_signed_prekey_replaces_the_previous_one(keys: KeyStore) -> None:
    newer = SignedPreKey(2, b"spk-alice-2", b"signature-2")
    await keys.set_signed_prekey(ALICE_PRIMARY, newer)
    [bundle] = await keys.take_bundles(ALICE, [1])
    assert bundle.signed_prekey == newer


async def test_bundles_without_one_time_prekeys_left_have_none(keys: KeyStore) -> None:
    await keys.add_prekeys(ALICE_PRIMARY, prekeys(1), max_stored=MAX_STORED)
    first = await keys.take_bundles(ALICE, [1])
    second = await keys.take_bundles(ALICE, [1])
    assert one_time_ids(first + second) == [1, None]
    assert second[0].signed_prekey.key_id == 1


async def test_bundles_follow_the_requested_order_and_skip_unknown_devices(
    backend: Backend,
) -> None:
    keys = backend.keys
    laptop = await link_device(backend.devices, device=new_device(one_time=(1, 2)))
    await keys.add_prekeys(ALICE_PRIMARY, prekeys(5), max_stored=MAX_STORED)
    bundles = await keys.take_bundles(ALICE, [laptop.device_id, 99, 1])
    assert [b.device_id for b in bundles] == [laptop.device_id, 1]
    assert one_time_ids(bundles) == [1, 5]
    assert bundles[0].registration_id == 4242
    assert bundles[0].identity_key == identity_key(ALICE)


async def test_bundles_of_an_unknown_user_are_empty(keys: KeyStore) -> None:
    assert await keys.take_bundles("nobody", [1]) == []


async def test_no_device_ids_means_every_device(backend: Backend) -> None:
    laptop = await link_device(backend.devices, device=new_device(one_time=(1,)))
    bundles = await backend.keys.take_bundles(ALICE, [])
    assert [b.device_id for b in bundles] == [1, laptop.device_id]
    assert one_time_ids(bundles) == [None, 1]


async def test_concurrent_takers_never_get_the_same_one_time_prekey(backend: Backend) -> None:
    keys = backend.keys
    laptop = await link_device(backend.devices, device=new_device(one_time=tuple(range(1, 16))))
    await keys.add_prekeys(ALICE_PRIMARY, prekeys(*range(1, 21)), max_stored=MAX_STORED)
    results = await asyncio.gather(
        *(keys.take_bundles(ALICE, [1, laptop.device_id]) for _ in range(30))
    )
    for device_id, stored in ((1, 20), (laptop.device_id, 15)):
        handed = [b.one_time_prekey for r in results for b in r if b.device_id == device_id]
        taken = [k.key_id for k in handed if k is not None]
        assert len(taken) == len(set(taken)) == stored
        assert sorted(taken) == list(range(1, stored + 1))
        assert handed.count(None) == 30 - stored
    assert await keys.count(ALICE_PRIMARY) == 0
    assert await keys.count(laptop) == 0


async def test_the_same_device_twice_in_one_request_gets_two_keys(keys: KeyStore) -> None:
    await keys.add_prekeys(ALICE_PRIMARY, prekeys(1, 2), max_stored=MAX_STORED)
    bundles = await keys.take_bundles(ALICE, [1, 1])
    assert {k for k in one_time_ids(bundles)} == {1, 2}


# --- keys written by linking ----------------------------------------------------------------


async def test_a_linked_device_starts_with_its_one_time_prekeys(backend: Backend) -> None:
    laptop = await link_device(backend.devices, device=new_device(one_time=(4, 5, 6)))
    assert await backend.keys.count(laptop) == 3
    [bundle] = await backend.keys.take_bundles(ALICE, [laptop.device_id])
    assert one_time_ids([bundle]) == [4]


async def test_a_retried_completion_does_not_bring_back_a_handed_out_key(
    backend: Backend,
) -> None:
    store, keys = backend.devices, backend.keys
    link = await store.create_link(link_request())
    await approve(store, link.link_code)
    device = new_device(one_time=(1, 2, 3))
    laptop = await store.complete_link(link.link_code, request_id="c1", device=device, now=NOW)
    await keys.take_bundles(ALICE, [laptop.device_id])
    await store.complete_link(link.link_code, request_id="c1", device=device, now=NOW)
    assert await keys.count(laptop) == 2


async def test_keys_of_other_devices_and_accounts_are_separate(backend: Backend) -> None:
    keys = backend.keys
    await backend.seed_account(BOB)
    bob = DeviceAddress(BOB, 1)
    await keys.add_prekeys(ALICE_PRIMARY, prekeys(1, 2), max_stored=MAX_STORED)
    await keys.add_prekeys(bob, prekeys(1, tag="bob"), max_stored=MAX_STORED)
    [bundle] = await keys.take_bundles(BOB, [1])
    assert bundle.one_time_prekey == PreKey(1, b"otk-bob-1")
    assert bundle.identity_key == identity_key(BOB)
    assert await keys.count(ALICE_PRIMARY) == 2
