"""Errors of the users service."""

from __future__ import annotations

from chatconnect.runtime.errors import ChatConnectError, LimitExceeded


class PhoneNumberInvalid(ChatConnectError):
    """The phone number is not in E.164 form."""


class VerificationNotFound(ChatConnectError):
    """No verification has this id."""


class VerificationExpired(ChatConnectError):
    """The verification code is too old; start a new verification."""


class VerificationCodeWrong(ChatConnectError):
    """The code does not match the one sent."""


class TooManyAttempts(ChatConnectError):
    """Too many wrong codes for this verification; start a new one later."""


class RefreshTokenInvalid(ChatConnectError):
    """The refresh token is unknown, used already, or expired."""


class ProviderUnavailable(ChatConnectError):
    """The verification provider could not send the code; try again later."""


class TooManyContacts(LimitExceeded):
    """The contact list would hold more user ids than `users.max_contacts`."""

    def __init__(self, *, limit: int, actual: int) -> None:
        super().__init__("contacts", setting="users.max_contacts", limit=limit, actual=actual)


class TooManyUsers(LimitExceeded):
    """One request names more user ids than its limit allows."""
