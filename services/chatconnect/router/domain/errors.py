"""Errors of the send path and the inbox."""

from __future__ import annotations

from collections.abc import Sequence

from chatconnect.groups.domain.errors import MembershipVersionStale
from chatconnect.router.domain.models import DeviceListMismatch
from chatconnect.runtime.errors import ChatConnectError, LimitExceeded


class ClientMessageIdInvalid(ChatConnectError):
    """The client message id is empty or too long."""


class DestinationMissing(ChatConnectError):
    """The send names no conversation."""


class CiphertextsMissing(ChatConnectError):
    """The send carries no ciphertext."""


class DeviceAddressedTwice(ChatConnectError):
    """Two ciphertexts of one send address the same device."""


class EnvelopeTypeInvalid(ChatConnectError):
    """A ciphertext has no type or a type only the server may use."""


class ContentMissing(ChatConnectError):
    """A ciphertext is empty."""


class NotAParticipant(ChatConnectError):
    """A ciphertext addresses a user who is neither the recipient nor the sender."""


class EnvelopeTooLarge(LimitExceeded):
    """A ciphertext is larger than router.max_envelope_bytes."""


class TooManyDevices(LimitExceeded):
    """A send addresses more devices than router.max_devices_per_send."""


class MessageNotFound(ChatConnectError):
    """The group has no such message (or it passed the retention time)."""


class NotMessageSender(ChatConnectError):
    """Only the sender of the message may do this."""


class OnlyAdminsSend(ChatConnectError):
    """The group lets only admins send, and the caller is not one."""


class GroupSendStale(MembershipVersionStale):
    """A group send was encrypted for another membership version than the current one."""

    def __init__(self, group_id: str, *, requested: int, current: int) -> None:
        super().__init__(group_id, requested=requested, current=current)
        # The groups service's text is about paging; a sender needs to know what to do.
        self.message = (
            f"group {group_id} is at membership version {current}, the send was encrypted "
            f"for {requested}: refresh the members (GetGroupDevices), distribute the sender "
            "key to new devices, rotate it if anyone left, and resend with the same client "
            "message id"
        )


class GroupContentMissing(ChatConnectError):
    """A group send carries no group_content."""


class TooManyKeyDistributions(LimitExceeded):
    """A group send carries more sender-key distributions than allowed."""


class TooManyIds(LimitExceeded):
    """An acknowledgement or receipt carries more ids than allowed."""


class ReceiptTypeInvalid(ChatConnectError):
    """Clients may send READ or PLAYED receipts only."""


class PageTokenInvalid(ChatConnectError):
    """The page token was not issued by this server."""


class DeviceListMismatchError(ChatConnectError):
    """The addressed devices differ from the current devices of one or more users."""

    def __init__(self, mismatches: Sequence[DeviceListMismatch]) -> None:
        users = ", ".join(m.user_id for m in mismatches)
        super().__init__(
            f"the device list changed for {users}: fetch keys for the missing devices and "
            "resend with the same client message id"
        )
        self.mismatches = tuple(mismatches)
