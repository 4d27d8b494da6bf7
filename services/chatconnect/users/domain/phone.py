"""Phone numbers."""

from __future__ import annotations

import re

from chatconnect.users.domain.errors import PhoneNumberInvalid

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# The North American Numbering Plan reserves 555-0100 through 555-0199 for fiction.
_FICTIONAL = re.compile(r"^\+1[2-9][0-9]{2}55501[0-9]{2}$")


def normalise(phone_number: str) -> str:
    """Returns the number in E.164 form, without spaces, dashes or parentheses."""
    compact = re.sub(r"[\s().-]", "", phone_number)
    if not _E164.match(compact):
        raise PhoneNumberInvalid(
            f"{phone_number!r} is not a phone number in E.164 form such as +15550100001"
        )
    return compact


def is_fictional(phone_number: str) -> bool:
    """True for numbers reserved for fiction (+1 NXX 555-01XX), used as test numbers."""
    return bool(_FICTIONAL.match(phone_number))
