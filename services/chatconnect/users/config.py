"""Settings of the users service (section [users])."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.runtime.config import one_of, positive, setting


@dataclass(frozen=True)
class UsersConfig:
    """Phone verification, registration, and contact lists."""

    verification_provider: str = setting(
        "log",
        "how codes reach phones: log (writes the code to the server log; development only)",
        check=one_of("log"),
    )
    verification_code_ttl_seconds: int = setting(
        600, "how long a verification code is accepted", check=positive
    )
    max_code_attempts: int = setting(
        5, "wrong codes allowed per verification before it is locked", check=positive
    )
    verifications_per_hour: int = setting(
        5, "verification codes one phone number may request per hour", check=positive
    )
    test_numbers_code: str = setting(
        "",
        "when set, fictional numbers (+1 NXX 555-01XX) accept this code without sending one; "
        "for development and demos only",
    )
    max_contacts: int = setting(
        5000, "user ids one account's contact list may hold", check=positive
    )
    max_contacts_per_request: int = setting(
        500, "user ids one UpdateContacts request may add and remove together", check=positive
    )
    contacts_page_size: int = setting(
        100, "contacts ListContacts returns when the request names no page_size", check=positive
    )
    max_contacts_page_size: int = setting(
        500, "most contacts one ListContacts page returns", check=positive
    )
    contacts_request_ttl_seconds: int = setting(
        86400,
        "how long an UpdateContacts request_id is remembered, so a repeat changes nothing",
        check=positive,
    )
