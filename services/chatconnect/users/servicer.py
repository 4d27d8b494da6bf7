"""UsersService over gRPC: Protobuf in, domain calls, Protobuf out."""

from __future__ import annotations

from typing import Any

import grpc

from chatconnect.keys.domain import errors as key_errors
from chatconnect.model import DeviceKind
from chatconnect.runtime import wire
from chatconnect.runtime.edge import ErrorTable, WireError, not_served, unary
from chatconnect.users.domain import errors
from chatconnect.users.domain.registration import RegistrationService
from chatconnect.users.domain.sessions import SessionIssuer
from chatconnect.users.v1 import users_service_pb2 as pb
from chatconnect.users.v1 import users_service_pb2_grpc as pb_grpc

Code = grpc.StatusCode
Context = grpc.aio.ServicerContext[Any, Any]

ERRORS = ErrorTable(
    "users.chatconnect",
    {
        errors.PhoneNumberInvalid: WireError(Code.INVALID_ARGUMENT, "PHONE_NUMBER_INVALID"),
        errors.VerificationNotFound: WireError(Code.NOT_FOUND, "VERIFICATION_NOT_FOUND"),
        errors.VerificationExpired: WireError(Code.FAILED_PRECONDITION, "VERIFICATION_EXPIRED"),
        errors.VerificationCodeWrong: WireError(Code.PERMISSION_DENIED, "VERIFICATION_CODE_WRONG"),
        errors.TooManyAttempts: WireError(Code.RESOURCE_EXHAUSTED, "TOO_MANY_ATTEMPTS"),
        errors.RefreshTokenInvalid: WireError(Code.UNAUTHENTICATED, "REFRESH_TOKEN_INVALID"),
        errors.ProviderUnavailable: WireError(Code.UNAVAILABLE, "PROVIDER_UNAVAILABLE"),
        key_errors.KeyInvalid: WireError(Code.INVALID_ARGUMENT, "KEY_INVALID"),
        key_errors.SignatureInvalid: WireError(Code.INVALID_ARGUMENT, "SIGNATURE_INVALID"),
    },
)


class UsersServicer(pb_grpc.UsersServiceServicer):
    """Registration and sessions. Profiles, privacy, blocking and discovery are not served
    yet: they answer UNIMPLEMENTED with reason NOT_SERVED_YET."""

    def __init__(self, *, registration: RegistrationService, sessions: SessionIssuer) -> None:
        self._registration = registration
        self._sessions = sessions

    @unary(ERRORS, "UsersService/StartVerification")
    async def StartVerification(
        self, request: pb.StartVerificationRequest, context: Context
    ) -> pb.StartVerificationResponse:
        verification = await self._registration.start_verification(
            request_id=request.request_id,
            phone_number=request.phone_number,
            locale=request.locale,
        )
        return pb.StartVerificationResponse(
            verification_id=verification.verification_id,
            expire_time=wire.timestamp(verification.expires_at),
        )

    @unary(ERRORS, "UsersService/CompleteRegistration")
    async def CompleteRegistration(
        self, request: pb.CompleteRegistrationRequest, context: Context
    ) -> pb.CompleteRegistrationResponse:
        registration, session = await self._registration.complete_registration(
            request_id=request.request_id,
            verification_id=request.verification_id,
            code=request.code,
            registration_id=request.registration_id,
            kind=wire.enum_from_wire(DeviceKind, request.kind, "kind"),
            keys=wire.device_keys_from_wire(request.keys, b""),
        )
        return pb.CompleteRegistrationResponse(
            user_id=registration.user_id,
            session=wire.session_to_wire(session),
            took_over_existing_account=registration.took_over,
        )

    @unary(ERRORS, "UsersService/RefreshSession")
    async def RefreshSession(
        self, request: pb.RefreshSessionRequest, context: Context
    ) -> pb.RefreshSessionResponse:
        session = await self._sessions.refresh(request.refresh_token)
        return pb.RefreshSessionResponse(session=wire.session_to_wire(session))

    GetProfile = not_served(ERRORS, "UsersService/GetProfile")
    UpdateProfile = not_served(ERRORS, "UsersService/UpdateProfile")
    GetPrivacySettings = not_served(ERRORS, "UsersService/GetPrivacySettings")
    UpdatePrivacySettings = not_served(ERRORS, "UsersService/UpdatePrivacySettings")
    BlockUser = not_served(ERRORS, "UsersService/BlockUser")
    UnblockUser = not_served(ERRORS, "UsersService/UnblockUser")
    ListBlockedUsers = not_served(ERRORS, "UsersService/ListBlockedUsers")
    DiscoverContacts = not_served(ERRORS, "UsersService/DiscoverContacts")
    DeleteAccount = not_served(ERRORS, "UsersService/DeleteAccount")
