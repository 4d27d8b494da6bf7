"""Privacy settings and contact lists end to end: real gRPC on a real server, embedded and
distributed (`any_server`), asserted as a client sees them (responses, status codes,
ErrorInfo reasons and details, and what a later read returns)."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.rpc import error_details_pb2

from chatconnect.client import Account, ChatError
from chatconnect.errordetails.v1 import errordetails_pb2
from chatconnect.users.v1 import users_pb2
from chatconnect.users.v1 import users_service_pb2 as pb
from chatconnect.users.v1 import users_service_pb2_grpc as pb_grpc
from tests.conftest import Server

Code = grpc.StatusCode
DOMAIN = "users.chatconnect"
V = users_pb2

DEFAULTS = users_pb2.PrivacySettings(
    last_seen=V.VISIBILITY_EVERYONE,
    online=V.VISIBILITY_EVERYONE,
    profile_photo=V.VISIBILITY_EVERYONE,
    about=V.VISIBILITY_EVERYONE,
    status=V.VISIBILITY_CONTACTS,
    read_receipts=True,
    group_add=V.VISIBILITY_EVERYONE,
)


# -- helpers ---------------------------------------------------------------------------------


class Users:
    """UsersService calls as one account."""

    def __init__(self, channel: grpc.aio.Channel, account: Account) -> None:
        self._stub = pb_grpc.UsersServiceStub(channel)
        self._metadata = account.metadata()

    async def settings(self) -> users_pb2.PrivacySettings:
        response = await self._stub.GetPrivacySettings(
            pb.GetPrivacySettingsRequest(), metadata=self._metadata
        )
        return response.settings

    async def update_settings(
        self, *, request_id: str | None = None, update_read_receipts: bool = False, **values: object
    ) -> users_pb2.PrivacySettings:
        response = await self._stub.UpdatePrivacySettings(
            pb.UpdatePrivacySettingsRequest(
                request_id=uuid.uuid4().hex if request_id is None else request_id,
                settings=users_pb2.PrivacySettings(**values),  # type: ignore[arg-type]
                update_read_receipts=update_read_receipts,
            ),
            metadata=self._metadata,
        )
        return response.settings

    async def update_contacts(
        self,
        *,
        add: list[str] = [],  # noqa: B006 (never mutated)
        remove: list[str] = [],  # noqa: B006
        request_id: str | None = None,
    ) -> pb.UpdateContactsResponse:
        return await self._stub.UpdateContacts(
            pb.UpdateContactsRequest(
                request_id=uuid.uuid4().hex if request_id is None else request_id,
                add_user_ids=add,
                remove_user_ids=remove,
            ),
            metadata=self._metadata,
        )

    async def list_page(self, page_size: int = 0, page_token: str = "") -> pb.ListContactsResponse:
        return await self._stub.ListContacts(
            pb.ListContactsRequest(page_size=page_size, page_token=page_token),
            metadata=self._metadata,
        )

    async def contacts(self) -> list[str]:
        return list((await self.list_page(page_size=500)).user_ids)


async def fails(call: object) -> ChatError:
    """The SDK view of a failed call; its ErrorInfo must name the users domain."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    error = ChatError.from_rpc(raised.value)
    info = error.detail(error_details_pb2.ErrorInfo)
    assert info is not None and info.domain == DOMAIN, error.details
    return error


def limit(error: ChatError) -> tuple[str, int, int]:
    detail = error.detail(errordetails_pb2.LimitExceeded)
    assert detail is not None, error.details
    return detail.setting, detail.limit, detail.actual


def violated_field(error: ChatError) -> str:
    detail = error.detail(error_details_pb2.BadRequest)
    assert detail is not None, error.details
    return str(detail.field_violations[0].field)


async def accounts(server: Server, count: int) -> list[Account]:
    return [await server.register() for _ in range(count)]


# -- privacy settings ------------------------------------------------------------------------


async def test_a_new_account_has_the_default_settings(any_server: Server) -> None:
    (alice,) = await accounts(any_server, 1)
    async with any_server.channel() as channel:
        assert await Users(channel, alice).settings() == DEFAULTS


async def test_an_update_keeps_the_values_it_leaves_unspecified(any_server: Server) -> None:
    (alice,) = await accounts(any_server, 1)
    laptop = await any_server.link(alice)
    async with any_server.channel() as channel:
        users = Users(channel, alice)
        first = await users.update_settings(last_seen=V.VISIBILITY_NOBODY)
        expected = users_pb2.PrivacySettings()
        expected.CopyFrom(DEFAULTS)
        expected.last_seen = V.VISIBILITY_NOBODY
        assert first == expected
        # read_receipts=False is not a change unless update_read_receipts says so.
        second = await users.update_settings(group_add=V.VISIBILITY_CONTACTS, read_receipts=False)
        expected.group_add = V.VISIBILITY_CONTACTS
        assert second == expected
        third = await users.update_settings(update_read_receipts=True, read_receipts=False)
        expected.read_receipts = False
        assert third == expected
        # The settings are the account's: every device reads the same.
        assert await Users(channel, laptop).settings() == expected
        assert await users.settings() == expected


async def test_a_repeated_settings_update_sets_the_same_values(any_server: Server) -> None:
    (alice,) = await accounts(any_server, 1)
    async with any_server.channel() as channel:
        users = Users(channel, alice)
        first = await users.update_settings(request_id="same", online=V.VISIBILITY_CONTACTS)
        again = await users.update_settings(request_id="same", online=V.VISIBILITY_CONTACTS)
        assert first == again == await users.settings()
        assert again.online == V.VISIBILITY_CONTACTS


async def test_bad_settings_updates_are_rejected_and_change_nothing(any_server: Server) -> None:
    (alice,) = await accounts(any_server, 1)
    async with any_server.channel() as channel:
        users = Users(channel, alice)
        stub = pb_grpc.UsersServiceStub(channel)
        unknown = await fails(users.update_settings(last_seen=V.VISIBILITY_NOBODY, online=99))
        assert (unknown.code, unknown.reason) == (Code.INVALID_ARGUMENT, "FIELD_INVALID")
        assert violated_field(unknown) == "settings.online"
        no_id = await fails(users.update_settings(request_id="", last_seen=V.VISIBILITY_NOBODY))
        assert (no_id.code, no_id.reason) == (Code.INVALID_ARGUMENT, "REQUEST_ID_MISSING")
        no_settings = await fails(
            stub.UpdatePrivacySettings(
                pb.UpdatePrivacySettingsRequest(request_id="r"), metadata=alice.metadata()
            )
        )
        assert (no_settings.reason, violated_field(no_settings)) == ("FIELD_MISSING", "settings")
        assert await users.settings() == DEFAULTS


# -- contacts ----------------------------------------------------------------------------------


async def test_contacts_are_added_removed_and_listed(any_server: Server) -> None:
    alice, bob, carol = await accounts(any_server, 3)
    stranger = str(uuid.uuid4())
    async with any_server.channel() as channel:
        users = Users(channel, alice)
        added = await users.update_contacts(
            add=[carol.user_id, bob.user_id, stranger, alice.user_id, bob.user_id]
        )
        assert added.contact_count == 2
        assert list(added.ignored_user_ids) == [stranger, alice.user_id]
        assert await users.contacts() == sorted([bob.user_id, carol.user_id])
        removed = await users.update_contacts(remove=[bob.user_id, stranger])
        assert (removed.contact_count, list(removed.ignored_user_ids)) == (1, [])
        assert await users.contacts() == [carol.user_id]
        # Another account's list is its own.
        assert await Users(channel, bob).contacts() == []


async def test_contacts_come_in_pages(any_server: Server) -> None:
    owner, *others = await accounts(any_server, 6)
    async with any_server.channel() as channel:
        users = Users(channel, owner)
        await users.update_contacts(add=[a.user_id for a in others])
        seen: list[str] = []
        token = ""
        pages = 0
        while True:
            page = await users.list_page(page_size=2, page_token=token)
            assert len(page.user_ids) <= 2
            seen.extend(page.user_ids)
            pages += 1
            token = page.next_page_token
            if not token:
                break
        assert pages == 3
        assert seen == sorted(a.user_id for a in others)


@pytest.mark.settings(users={"contacts_page_size": 2, "max_contacts_page_size": 3})
async def test_page_sizes_default_and_are_capped_by_settings(any_server: Server) -> None:
    owner, *others = await accounts(any_server, 5)
    async with any_server.channel() as channel:
        users = Users(channel, owner)
        await users.update_contacts(add=[a.user_id for a in others])
        assert len((await users.list_page()).user_ids) == 2
        capped = await users.list_page(page_size=1000)
        assert len(capped.user_ids) == 3 and capped.next_page_token
        rest = await users.list_page(page_size=1000, page_token=capped.next_page_token)
        assert (len(rest.user_ids), rest.next_page_token) == (1, "")


async def test_bad_pages_are_rejected(any_server: Server) -> None:
    (owner,) = await accounts(any_server, 1)
    async with any_server.channel() as channel:
        users = Users(channel, owner)
        for token in ("not a token", "Zm9vOmJhcg=="):  # the second is base64 of "foo:bar"
            error = await fails(users.list_page(page_token=token))
            assert (error.code, error.reason) == (Code.INVALID_ARGUMENT, "FIELD_INVALID")
            assert violated_field(error) == "page_token"
        negative = await fails(users.list_page(page_size=-1))
        assert (negative.reason, violated_field(negative)) == ("FIELD_INVALID", "page_size")


@pytest.mark.settings(users={"max_contacts": 2, "max_contacts_per_request": 3})
async def test_contact_limits_are_enforced_with_their_settings(any_server: Server) -> None:
    owner, a, b, c = await accounts(any_server, 4)
    async with any_server.channel() as channel:
        users = Users(channel, owner)
        assert (await users.update_contacts(add=[a.user_id])).contact_count == 1
        full = await fails(users.update_contacts(add=[b.user_id, c.user_id]))
        assert (full.code, full.reason) == (Code.RESOURCE_EXHAUSTED, "TOO_MANY_CONTACTS")
        assert limit(full) == ("users.max_contacts", 2, 3)
        assert await users.contacts() == [a.user_id]
        ids = [b.user_id, c.user_id, str(uuid.uuid4()), str(uuid.uuid4())]
        too_many = await fails(users.update_contacts(add=ids[:2], remove=ids[2:]))
        assert (too_many.code, too_many.reason) == (Code.INVALID_ARGUMENT, "TOO_MANY_USERS")
        assert limit(too_many) == ("users.max_contacts_per_request", 3, 4)
        assert await users.contacts() == [a.user_id]
        # Making room lets the same additions in.
        swapped = await users.update_contacts(add=[b.user_id], remove=[a.user_id])
        assert swapped.contact_count == 1
        assert await users.contacts() == [b.user_id]


async def test_a_repeated_contacts_request_changes_nothing(any_server: Server) -> None:
    owner, bob = await accounts(any_server, 2)
    async with any_server.channel() as channel:
        users = Users(channel, owner)
        first = await users.update_contacts(add=[bob.user_id], request_id="add-bob")
        assert first.contact_count == 1
        assert (await users.update_contacts(remove=[bob.user_id])).contact_count == 0
        repeat = await users.update_contacts(add=[bob.user_id], request_id="add-bob")
        assert repeat.contact_count == 1
        assert await users.contacts() == []


async def test_bad_contacts_requests_are_rejected_and_change_nothing(any_server: Server) -> None:
    owner, bob = await accounts(any_server, 2)
    async with any_server.channel() as channel:
        users = Users(channel, owner)
        no_id = await fails(users.update_contacts(add=[bob.user_id], request_id=""))
        assert (no_id.code, no_id.reason) == (Code.INVALID_ARGUMENT, "REQUEST_ID_MISSING")
        empty = await fails(users.update_contacts(add=[bob.user_id, ""]))
        assert (empty.reason, violated_field(empty)) == ("FIELD_INVALID", "add_user_ids")
        long = await fails(users.update_contacts(remove=["x" * 65]))
        assert (long.reason, violated_field(long)) == ("FIELD_INVALID", "remove_user_ids")
        both = await fails(users.update_contacts(add=[bob.user_id], remove=[bob.user_id]))
        assert (both.code, both.reason) == (Code.INVALID_ARGUMENT, "FIELD_INVALID")
        assert await users.contacts() == []


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [((), "TOKEN_MISSING"), ((("authorization", "Bearer not-a-token"),), "TOKEN_INVALID")],
)
async def test_privacy_and_contacts_need_a_valid_access_token(
    any_server: Server, metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    (alice,) = await accounts(any_server, 1)
    async with any_server.channel() as channel:
        stub = pb_grpc.UsersServiceStub(channel)
        calls = [
            stub.GetPrivacySettings(pb.GetPrivacySettingsRequest(), metadata=metadata),
            stub.UpdatePrivacySettings(
                pb.UpdatePrivacySettingsRequest(
                    request_id="r", settings=users_pb2.PrivacySettings(last_seen=3)
                ),
                metadata=metadata,
            ),
            stub.UpdateContacts(
                pb.UpdateContactsRequest(request_id="r", add_user_ids=[alice.user_id]),
                metadata=metadata,
            ),
            stub.ListContacts(pb.ListContactsRequest(), metadata=metadata),
        ]
        for call in calls:
            error = await fails(call)
            assert (error.code, error.reason) == (Code.UNAUTHENTICATED, reason)
        assert await Users(channel, alice).settings() == DEFAULTS
