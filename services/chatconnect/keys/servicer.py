"""KeysService over gRPC."""

from __future__ import annotations

from typing import Any

import grpc

from chatconnect.keys.domain import errors
from chatconnect.keys.domain.directory import KeyDirectory
from chatconnect.keys.domain.models import PreKey, SignedPreKey
from chatconnect.keys.v1 import keys_pb2
from chatconnect.keys.v1 import keys_service_pb2 as pb
from chatconnect.keys.v1 import keys_service_pb2_grpc as pb_grpc
from chatconnect.runtime.auth import Authenticator
from chatconnect.runtime.edge import ErrorTable, WireError, unary
from chatconnect.runtime.guard import authenticate
from chatconnect.users.v1 import users_pb2

Code = grpc.StatusCode
Context = grpc.aio.ServicerContext[Any, Any]

ERRORS = ErrorTable(
    "keys.chatconnect",
    {
        errors.KeyInvalid: WireError(Code.INVALID_ARGUMENT, "KEY_INVALID"),
        errors.SignatureInvalid: WireError(Code.INVALID_ARGUMENT, "SIGNATURE_INVALID"),
        errors.IdentityKeyMismatch: WireError(Code.INVALID_ARGUMENT, "IDENTITY_KEY_MISMATCH"),
    },
)


class KeysServicer(pb_grpc.KeysServiceServicer):
    """The public prekey directory."""

    def __init__(self, *, keys: KeyDirectory, authenticator: Authenticator) -> None:
        self._keys = keys
        self._auth = authenticator

    @unary(ERRORS, "KeysService/UploadPreKeys")
    async def UploadPreKeys(
        self, request: pb.UploadPreKeysRequest, context: Context
    ) -> pb.UploadPreKeysResponse:
        caller = await authenticate(self._auth, context)
        spk = request.signed_prekey
        count = await self._keys.upload(
            caller,
            request_id=request.request_id,
            signed_prekey=(
                SignedPreKey(spk.key_id, spk.public_key, spk.signature)
                if request.HasField("signed_prekey")
                else None
            ),
            prekeys=tuple(PreKey(k.key_id, k.public_key) for k in request.one_time_prekeys),
        )
        return pb.UploadPreKeysResponse(one_time_prekey_count=count)

    @unary(ERRORS, "KeysService/GetPreKeyBundles")
    async def GetPreKeyBundles(
        self, request: pb.GetPreKeyBundlesRequest, context: Context
    ) -> pb.GetPreKeyBundlesResponse:
        caller = await authenticate(self._auth, context)
        bundles = await self._keys.bundles(caller, request.user_id, tuple(request.device_ids))
        return pb.GetPreKeyBundlesResponse(
            bundles=[
                keys_pb2.PreKeyBundle(
                    device_id=b.device_id,
                    registration_id=b.registration_id,
                    identity_key=b.identity_key,
                    signed_prekey=users_pb2.SignedPreKey(
                        key_id=b.signed_prekey.key_id,
                        public_key=b.signed_prekey.public_key,
                        signature=b.signed_prekey.signature,
                    ),
                    one_time_prekey=(
                        users_pb2.PreKey(
                            key_id=b.one_time_prekey.key_id,
                            public_key=b.one_time_prekey.public_key,
                        )
                        if b.one_time_prekey
                        else None
                    ),
                )
                for b in bundles
            ]
        )

    @unary(ERRORS, "KeysService/GetPreKeyCount")
    async def GetPreKeyCount(
        self, request: pb.GetPreKeyCountRequest, context: Context
    ) -> pb.GetPreKeyCountResponse:
        caller = await authenticate(self._auth, context)
        return pb.GetPreKeyCountResponse(one_time_prekey_count=await self._keys.count(caller))
