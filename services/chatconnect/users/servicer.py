"""UsersService over gRPC: Protobuf in, domain calls, Protobuf out."""

from __future__ import annotations

from typing import Any

import grpc

from chatconnect.keys.domain import errors as key_errors
from chatconnect.model import DeviceKind
from chatconnect.runtime import wire
from chatconnect.runtime.auth import Authenticator
from chatconnect.runtime.edge import ErrorTable, WireError, limit_details, not_served, unary
from chatconnect.runtime.errors import FieldMissing
from chatconnect.runtime.guard import authenticate
from chatconnect.users.domain import errors
from chatconnect.users.domain.models import PrivacyChanges, PrivacySettings, Visibility
from chatconnect.users.domain.privacy import PrivacyService
from chatconnect.users.domain.registration import RegistrationService
from chatconnect.users.domain.sessions import SessionIssuer
from chatconnect.users.v1 import users_pb2
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
        errors.TooManyContacts: WireError(
            Code.RESOURCE_EXHAUSTED, "TOO_MANY_CONTACTS", limit_details
        ),
        errors.TooManyUsers: WireError(Code.INVALID_ARGUMENT, "TOO_MANY_USERS", limit_details),
        key_errors.KeyInvalid: WireError(Code.INVALID_ARGUMENT, "KEY_INVALID"),
        key_errors.SignatureInvalid: WireError(Code.INVALID_ARGUMENT, "SIGNATURE_INVALID"),
    },
)


_VISIBILITY_FIELDS = ("last_seen", "online", "profile_photo", "about", "status", "group_add")


def _settings_to_wire(settings: PrivacySettings) -> users_pb2.PrivacySettings:
    return users_pb2.PrivacySettings(
        last_seen=int(settings.last_seen),  # type: ignore[arg-type]
        online=int(settings.online),  # type: ignore[arg-type]
        profile_photo=int(settings.profile_photo),  # type: ignore[arg-type]
        about=int(settings.about),  # type: ignore[arg-type]
        status=int(settings.status),  # type: ignore[arg-type]
        read_receipts=settings.read_receipts,
        group_add=int(settings.group_add),  # type: ignore[arg-type]
    )


def _changes_from_wire(request: pb.UpdatePrivacySettingsRequest) -> PrivacyChanges:
    """VISIBILITY_UNSPECIFIED keeps a value; read receipts change only when asked to."""
    if not request.HasField("settings"):
        raise FieldMissing("settings")
    visibilities: dict[str, Visibility | None] = {}
    for name in _VISIBILITY_FIELDS:
        value = wire.enum_from_wire(Visibility, getattr(request.settings, name), f"settings.{name}")
        visibilities[name] = None if value == Visibility.UNSPECIFIED else value
    read_receipts = request.settings.read_receipts if request.update_read_receipts else None
    return PrivacyChanges(**visibilities, read_receipts=read_receipts)


class UsersServicer(pb_grpc.UsersServiceServicer):
    """Registration, sessions, privacy settings and contact lists. Profiles, blocking and
    discovery are not served yet: they answer UNIMPLEMENTED with reason NOT_SERVED_YET."""

    def __init__(
        self,
        *,
        registration: RegistrationService,
        sessions: SessionIssuer,
        privacy: PrivacyService,
        authenticator: Authenticator,
    ) -> None:
        self._registration = registration
        self._sessions = sessions
        self._privacy = privacy
        self._auth = authenticator

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

    @unary(ERRORS, "UsersService/GetPrivacySettings")
    async def GetPrivacySettings(
        self, request: pb.GetPrivacySettingsRequest, context: Context
    ) -> pb.GetPrivacySettingsResponse:
        caller = await authenticate(self._auth, context)
        settings = await self._privacy.settings(caller)
        return pb.GetPrivacySettingsResponse(settings=_settings_to_wire(settings))

    @unary(ERRORS, "UsersService/UpdatePrivacySettings")
    async def UpdatePrivacySettings(
        self, request: pb.UpdatePrivacySettingsRequest, context: Context
    ) -> pb.UpdatePrivacySettingsResponse:
        caller = await authenticate(self._auth, context)
        settings = await self._privacy.update_settings(
            caller, request_id=request.request_id, changes=_changes_from_wire(request)
        )
        return pb.UpdatePrivacySettingsResponse(settings=_settings_to_wire(settings))

    @unary(ERRORS, "UsersService/UpdateContacts")
    async def UpdateContacts(
        self, request: pb.UpdateContactsRequest, context: Context
    ) -> pb.UpdateContactsResponse:
        caller = await authenticate(self._auth, context)
        change = await self._privacy.update_contacts(
            caller,
            request_id=request.request_id,
            add_user_ids=list(request.add_user_ids),
            remove_user_ids=list(request.remove_user_ids),
        )
        return pb.UpdateContactsResponse(
            contact_count=change.contact_count, ignored_user_ids=change.ignored_user_ids
        )

    @unary(ERRORS, "UsersService/ListContacts")
    async def ListContacts(
        self, request: pb.ListContactsRequest, context: Context
    ) -> pb.ListContactsResponse:
        caller = await authenticate(self._auth, context)
        page = await self._privacy.list_contacts(
            caller, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListContactsResponse(user_ids=page.user_ids, next_page_token=page.next_page_token)

    GetProfile = not_served(ERRORS, "UsersService/GetProfile")
    UpdateProfile = not_served(ERRORS, "UsersService/UpdateProfile")
    BlockUser = not_served(ERRORS, "UsersService/BlockUser")
    UnblockUser = not_served(ERRORS, "UsersService/UnblockUser")
    ListBlockedUsers = not_served(ERRORS, "UsersService/ListBlockedUsers")
    DiscoverContacts = not_served(ERRORS, "UsersService/DiscoverContacts")
    DeleteAccount = not_served(ERRORS, "UsersService/DeleteAccount")
