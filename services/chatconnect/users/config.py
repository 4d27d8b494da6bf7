"""Settings of the users service (section [users])."""

from __future__ import annotations

from dataclasses import dataclass

from chatconnect.runtime.config import one_of, positive, setting


@dataclass(frozen=True)
class UsersConfig:
    """Phone verification and registration."""

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
