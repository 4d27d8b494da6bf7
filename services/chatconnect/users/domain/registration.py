"""Phone verification and registration."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from chatconnect.bus.ports import Bus, DeviceRevoked, RateLimiter
from chatconnect.keys.domain.models import DeviceKeys
from chatconnect.keys.domain.validation import check_device_keys
from chatconnect.model import Clock, DeviceAddress, DeviceKind
from chatconnect.runtime.errors import FieldInvalid, FieldMissing, RateLimited, RequestIdMissing
from chatconnect.runtime.logging import get_logger
from chatconnect.users.config import UsersConfig
from chatconnect.users.domain import phone
from chatconnect.users.domain.errors import (
    TooManyAttempts,
    VerificationCodeWrong,
    VerificationExpired,
    VerificationNotFound,
)
from chatconnect.users.domain.models import DeviceSession, NewDevice, Registration, Verification
from chatconnect.users.domain.sessions import SessionIssuer
from chatconnect.users.ports import AccountStore, VerificationProvider

log = get_logger("users")

PRIMARY_DEVICE_ID = 1
MAX_REGISTRATION_ID = 16380
MAX_REQUEST_ID_LENGTH = 64


def _code_hash(verification_id: str, code: str) -> bytes:
    return hmac.new(verification_id.encode(), code.encode(), hashlib.sha256).digest()


def check_request_id(request_id: str) -> None:
    """Every mutating call carries a client-chosen idempotency key."""
    if not request_id:
        raise RequestIdMissing()
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise FieldInvalid("request_id", f"at most {MAX_REQUEST_ID_LENGTH} characters")


def check_registration_id(registration_id: int) -> None:
    """Registration ids are 1..16380, as in the Signal protocol."""
    if not 1 <= registration_id <= MAX_REGISTRATION_ID:
        raise FieldInvalid("registration_id", f"must be between 1 and {MAX_REGISTRATION_ID}")


class RegistrationService:
    """Verifies phone numbers and registers accounts with their primary device."""

    def __init__(
        self,
        *,
        store: AccountStore,
        provider: VerificationProvider,
        sessions: SessionIssuer,
        limiter: RateLimiter,
        bus: Bus,
        config: UsersConfig,
        prekey_limit: int,
        clock: Clock,
    ) -> None:
        self._store = store
        self._provider = provider
        self._sessions = sessions
        self._limiter = limiter
        self._bus = bus
        self._config = config
        self._prekey_limit = prekey_limit
        self._clock = clock

    async def start_verification(
        self, *, request_id: str, phone_number: str, locale: str
    ) -> Verification:
        """Sends a code to `phone_number` (at most `users.verifications_per_hour`)."""
        check_request_id(request_id)
        number = phone.normalise(phone_number)
        decision = await self._limiter.acquire(
            f"verify:{number}",
            rate_per_second=self._config.verifications_per_hour / 3600.0,
            burst=self._config.verifications_per_hour,
        )
        if not decision.allowed:
            raise RateLimited("phone_number", decision.retry_after_seconds)
        test_code = self._config.test_numbers_code
        use_test_code = bool(test_code) and phone.is_fictional(number)
        code = test_code if use_test_code else f"{secrets.randbelow(1_000_000):06d}"
        verification_id = uuid.uuid4().hex
        stored = await self._store.create_verification(
            Verification(
                verification_id=verification_id,
                phone_number=number,
                request_id=request_id,
                code_hash=_code_hash(verification_id, code),
                expires_at=self._clock() + self._config.verification_code_ttl_seconds,
            )
        )
        if stored.verification_id == verification_id and not use_test_code:
            await self._provider.send_code(number, code, locale=locale or "en")
        return stored

    async def complete_registration(
        self,
        *,
        request_id: str,
        verification_id: str,
        code: str,
        registration_id: int,
        kind: DeviceKind,
        keys: DeviceKeys,
    ) -> tuple[Registration, DeviceSession]:
        """Proves the code, then creates or takes over the account and its device 1."""
        check_request_id(request_id)
        if not verification_id:
            raise FieldMissing("verification_id")
        if not code:
            raise FieldMissing("code")
        check_registration_id(registration_id)
        if kind == DeviceKind.UNSPECIFIED:
            raise FieldMissing("kind")
        check_device_keys(keys, prekey_limit=self._prekey_limit)
        verification = await self._store.get_verification(verification_id)
        if verification is None:
            raise VerificationNotFound(f"no verification {verification_id}")
        if verification.expires_at <= self._clock():
            raise VerificationExpired("the code expired; start a new verification")
        # Every check of the code uses up one attempt first, atomically, so a burst of
        # concurrent guesses gets no more tries than the limit.
        if not await self._store.reserve_attempt(
            verification_id, max_attempts=self._config.max_code_attempts
        ):
            raise TooManyAttempts("too many attempts; start a new verification")
        if not hmac.compare_digest(_code_hash(verification_id, code), verification.code_hash):
            raise VerificationCodeWrong("the code is wrong")
        device = DeviceAddress(verification.completed_user_id or "", PRIMARY_DEVICE_ID)
        if verification.completed_request_id is not None:
            if verification.completed_request_id != request_id:
                raise VerificationNotFound("this verification was already used")
            # A retry of a registration whose answer was lost: same account, new session.
            registration = Registration(
                device.user_id,
                verification.completed_incarnation or "",
                took_over=verification.completed_took_over,
            )
        else:
            registration = await self._store.register(
                verification=verification,
                request_id=request_id,
                new_user_id=str(uuid.uuid4()),
                primary=NewDevice(uuid.uuid4().hex, registration_id, kind, keys),
                now=self._clock(),
            )
            if registration.removed_devices:
                await self._bus.publish([DeviceRevoked(d) for d in registration.removed_devices])
            log.info(
                "account registered", user_id=registration.user_id, took_over=registration.took_over
            )
        session = await self._sessions.issue(
            DeviceAddress(registration.user_id, PRIMARY_DEVICE_ID), registration.incarnation
        )
        return registration, session
