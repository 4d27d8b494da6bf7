"""The ScyllaDB adapter of the users service's AccountStore.

There are no multi-row transactions, so every guarantee of the port rests on one lightweight
transaction (LWT: a Paxos compare-and-set on one partition, at LOCAL_SERIAL), and every other
write is idempotent, so a request retried after any failure converges:

* create_verification: `verifications_by_request` is claimed IF NOT EXISTS and carries the
  verification's fields; the `verifications` row is then written IF NOT EXISTS from whatever
  claim won. A retry after a crash between the two finishes the same verification.
* reserve_attempt: compare-and-set of `attempts` (IF attempts = n), so concurrent guesses
  serialise on the row and never pass the limit. `attempts` is only ever written by LWTs
  (the row is created IF NOT EXISTS), since Paxos ballots and plain write timestamps do not
  order each other when clocks are skewed.
* register: the owner of a number is its `accounts_by_phone` row, claimed IF NOT EXISTS (new
  number) or IF write_time = <the one seen> (take-over, or a retry of this registration,
  which keeps the recorded outcome). The claim records the outcome (user, incarnation,
  took_over, removed devices) and two write timestamps; one logged batch then deletes the
  old devices' partitions (devices, keys, inbox, inbox_by_message, inbox_gaps; never
  inbox_heads, whose marks keep sequences from being reused) USING TIMESTAMP delete_time,
  writes the account, device 1 and its keys USING TIMESTAMP write_time, and marks the
  verification completed at write_time. Each claim's timestamps are above those of the claim
  it replaces, so the late writes of a slower, superseded registration are shadowed, and
  replaying a batch rewrites the same tombstones. A retry whose verification is already
  completed by its request id returns the recorded registration.
* take_refresh_token: DELETE IF EXISTS, so only the request whose delete applied gets the
  token; saving is INSERT IF NOT EXISTS so that both writes are Paxos-ordered.

Verifications (kept `VERIFICATION_KEPT_SECONDS` past expires_at, so that a late code is
reported as expired rather than unknown) and refresh tokens carry TTLs computed from their
own expires_at, at least one second. Refresh tokens are found by hash only, so a take-over
cannot list the old devices' tokens: they stop working because a token is accepted only
while its device incarnation is current, and their TTL removes them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from chatconnect.model import Clock, DeviceAddress, system_clock
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.storage.cql import CqlSession, Row, Statement, ttl
from chatconnect.users.domain.models import NewDevice, Registration, Verification
from chatconnect.users.ports import AccountStore

VERIFICATION_KEPT_SECONDS = 3600.0
"""How long a verification stays readable after it expires."""

PRIMARY_DEVICE_ID = 1
_CLAIM_ROUNDS = 16
_INBOX_TABLES = ("inbox", "inbox_by_message", "inbox_gaps")


def ttl_seconds(expires_at: float, now: float) -> int:
    """The TTL of a record that expires at `expires_at`, written at `now`."""
    return ttl(expires_at - now)


def _micros(seconds: float) -> int:
    return int(seconds * 1_000_000)


def _verification(row: Row) -> Verification:
    return Verification(
        verification_id=row["verification_id"],
        phone_number=row["phone_number"],
        request_id=row["request_id"],
        code_hash=row["code_hash"],
        expires_at=row["expires_at"],
        attempts=row["attempts"] or 0,
        completed_request_id=row["completed_request_id"],
        completed_user_id=row["completed_user_id"],
        completed_incarnation=row["completed_incarnation"],
        completed_took_over=bool(row["completed_took_over"]),
    )


@dataclass(frozen=True)
class _Claim:
    """A phone number's `accounts_by_phone` row: its account and the registration owning it."""

    phone_number: str
    user_id: str
    created_at: float
    verification_id: str
    request_id: str
    incarnation: str
    took_over: bool
    removed: tuple[int, ...]
    delete_time: int
    write_time: int

    @classmethod
    def from_row(cls, row: Row) -> _Claim:
        return cls(
            phone_number=row["phone_number"],
            user_id=row["user_id"],
            created_at=row["created_at"] or 0.0,
            verification_id=row["verification_id"] or "",
            request_id=row["request_id"] or "",
            incarnation=row["incarnation"] or "",
            took_over=bool(row["took_over"]),
            removed=tuple(sorted(row["removed"] or ())),
            delete_time=row["delete_time"] or 0,
            write_time=row["write_time"] or 0,
        )

    def values(self) -> tuple[Any, ...]:
        """The columns after the phone number, in `_CLAIM_COLUMNS` order."""
        return (
            self.user_id,
            self.created_at,
            self.verification_id,
            self.request_id,
            self.incarnation,
            self.took_over,
            set(self.removed),
            self.delete_time,
            self.write_time,
        )

    def registration(self) -> Registration:
        removed = tuple(DeviceAddress(self.user_id, d) for d in self.removed)
        return Registration(self.user_id, self.incarnation, self.took_over, removed)


_CLAIM_COLUMNS = (
    "user_id",
    "created_at",
    "verification_id",
    "request_id",
    "incarnation",
    "took_over",
    "removed",
    "delete_time",
    "write_time",
)
_INSERT_CLAIM = (
    f"INSERT INTO accounts_by_phone (phone_number, {', '.join(_CLAIM_COLUMNS)}) "
    f"VALUES (?, {', '.join('?' for _ in _CLAIM_COLUMNS)}) IF NOT EXISTS"
)
_UPDATE_CLAIM = (
    f"UPDATE accounts_by_phone SET {', '.join(f'{c} = ?' for c in _CLAIM_COLUMNS)} "
    "WHERE phone_number = ? IF write_time = ?"
)


class ScyllaAccountStore(AccountStore):
    """Accounts, verifications and refresh tokens in ScyllaDB (or Apache Cassandra)."""

    def __init__(self, cql: CqlSession, *, clock: Clock = system_clock) -> None:
        self._cql = cql
        self._clock = clock

    # --- verifications ---------------------------------------------------------------------

    async def create_verification(self, verification: Verification) -> Verification:
        claimed = await self._claim_request(verification)
        ttl = ttl_seconds(claimed.expires_at + VERIFICATION_KEPT_SECONDS, self._clock())
        applied, row = await self._cql.conditional(
            "create_verification",
            "INSERT INTO verifications (verification_id, phone_number, request_id, code_hash, "
            "expires_at, attempts) VALUES (?, ?, ?, ?, ?, 0) IF NOT EXISTS USING TTL ?",
            (
                claimed.verification_id,
                claimed.phone_number,
                claimed.request_id,
                claimed.code_hash,
                claimed.expires_at,
                ttl,
            ),
        )
        return claimed if applied else _verification(row)

    async def _claim_request(self, verification: Verification) -> Verification:
        """The verification of (phone number, request id): `verification` if this call
        claimed the pair, else the one an earlier call claimed."""
        ttl = ttl_seconds(verification.expires_at + VERIFICATION_KEPT_SECONDS, self._clock())
        applied, seen = await self._cql.conditional(
            "claim_verification_request",
            "INSERT INTO verifications_by_request (phone_number, request_id, verification_id, "
            "code_hash, expires_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS USING TTL ?",
            (
                verification.phone_number,
                verification.request_id,
                verification.verification_id,
                verification.code_hash,
                verification.expires_at,
                ttl,
            ),
        )
        if applied:
            return verification
        return replace(
            verification,
            verification_id=seen["verification_id"],
            code_hash=seen["code_hash"],
            expires_at=seen["expires_at"],
        )

    async def get_verification(self, verification_id: str) -> Verification | None:
        rows = await self._cql.execute(
            "get_verification",
            "SELECT * FROM verifications WHERE verification_id = ?",
            (verification_id,),
        )
        # A row without a phone number holds only cells written after the verification was
        # gone (register's completion), so there is no verification.
        if not rows or rows[0]["phone_number"] is None:
            return None
        return _verification(rows[0])

    async def reserve_attempt(self, verification_id: str, *, max_attempts: int) -> bool:
        rows = await self._cql.execute(
            "read_attempts",
            "SELECT attempts, expires_at FROM verifications WHERE verification_id = ?",
            (verification_id,),
        )
        if not rows or rows[0]["attempts"] is None or rows[0]["expires_at"] is None:
            return False
        attempts: int = rows[0]["attempts"]
        ttl = ttl_seconds(rows[0]["expires_at"] + VERIFICATION_KEPT_SECONDS, self._clock())
        # Each lost round means another guess was counted, so this ends within the limit.
        for _ in range(max_attempts + 1):
            if attempts >= max_attempts:
                return False
            applied, seen = await self._cql.conditional(
                "reserve_attempt",
                "UPDATE verifications USING TTL ? SET attempts = ? WHERE verification_id = ? "
                "IF attempts = ?",
                (ttl, attempts + 1, verification_id, attempts),
            )
            if applied:
                return True
            if seen.get("attempts") is None:
                return False
            attempts = seen["attempts"]
        return False

    # --- registration ----------------------------------------------------------------------

    async def register(
        self,
        *,
        verification: Verification,
        request_id: str,
        new_user_id: str,
        primary: NewDevice,
        now: float,
    ) -> Registration:
        done = await self._completed(verification.verification_id, request_id)
        if done is not None:
            return done
        claim = await self._claim_number(verification, request_id, new_user_id, primary, now)
        await self._cql.batch(
            "register",
            [
                *_removals(claim),
                *_account_writes(claim, primary, now),
                _completion(claim, verification, now),
            ],
        )
        return claim.registration()

    async def _completed(self, verification_id: str, request_id: str) -> Registration | None:
        """The registration recorded on the verification, if `request_id` completed it."""
        rows = await self._cql.execute(
            "read_completion",
            "SELECT completed_request_id, completed_user_id, completed_incarnation, "
            "completed_took_over FROM verifications WHERE verification_id = ?",
            (verification_id,),
        )
        if not rows or rows[0]["completed_request_id"] != request_id:
            return None
        row = rows[0]
        return Registration(
            row["completed_user_id"],
            row["completed_incarnation"],
            took_over=bool(row["completed_took_over"]),
        )

    async def _claim_number(
        self,
        verification: Verification,
        request_id: str,
        new_user_id: str,
        primary: NewDevice,
        now: float,
    ) -> _Claim:
        """Makes this registration the owner of the number (one LWT that applied)."""
        seen = await self._read_claim(verification.phone_number)
        for _ in range(_CLAIM_ROUNDS):
            if seen is None:
                wall = _micros(self._clock())
                claim = _Claim(
                    verification.phone_number,
                    new_user_id,
                    now,
                    verification.verification_id,
                    request_id,
                    primary.incarnation,
                    took_over=False,
                    removed=(),
                    delete_time=wall - 1,
                    write_time=wall,
                )
                applied, row = await self._cql.conditional(
                    "claim_number", _INSERT_CLAIM, (claim.phone_number, *claim.values())
                )
                if applied:
                    return claim
                seen = _Claim.from_row(row)
                continue
            claim = await self._succeed(seen, verification, request_id, primary)
            applied, _ = await self._cql.conditional(
                "claim_number",
                _UPDATE_CLAIM,
                (*claim.values(), claim.phone_number, seen.write_time or None),
            )
            if applied:
                return claim
            seen = await self._read_claim(verification.phone_number)
        raise StoreUnavailable(f"too much contention registering {verification.phone_number}")

    async def _succeed(
        self, seen: _Claim, verification: Verification, request_id: str, primary: NewDevice
    ) -> _Claim:
        """The claim that replaces `seen`: a retry of the same registration keeps its outcome
        and deletion time; any other takes the account over."""
        write_time = max(_micros(self._clock()), seen.write_time + 2)
        if (seen.verification_id, seen.request_id) == (verification.verification_id, request_id):
            return replace(seen, write_time=write_time)
        devices = await self._device_ids(seen.user_id)
        return replace(
            seen,
            verification_id=verification.verification_id,
            request_id=request_id,
            incarnation=primary.incarnation,
            took_over=True,
            # Device 1 may still be on its way from a registration that has not finished.
            removed=tuple(sorted({PRIMARY_DEVICE_ID, *devices})),
            delete_time=write_time - 1,
            write_time=write_time,
        )

    async def _read_claim(self, phone_number: str) -> _Claim | None:
        rows = await self._cql.execute(
            "read_number",
            "SELECT * FROM accounts_by_phone WHERE phone_number = ?",
            (phone_number,),
        )
        return _Claim.from_row(rows[0]) if rows else None

    async def _device_ids(self, user_id: str) -> list[int]:
        rows = await self._cql.execute_all(
            "list_device_ids", "SELECT device_id FROM devices WHERE user_id = ?", (user_id,)
        )
        return [int(r["device_id"]) for r in rows]

    # --- refresh tokens --------------------------------------------------------------------

    async def save_refresh_token(
        self, token_hash: bytes, device: DeviceAddress, incarnation: str, expires_at: float
    ) -> None:
        await self._cql.conditional(
            "save_refresh_token",
            "INSERT INTO device_sessions (token_hash, user_id, device_id, incarnation, "
            "expires_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS USING TTL ?",
            (
                token_hash,
                device.user_id,
                device.device_id,
                incarnation,
                expires_at,
                ttl_seconds(expires_at, self._clock()),
            ),
        )

    async def take_refresh_token(
        self, token_hash: bytes, now: float
    ) -> tuple[DeviceAddress, str] | None:
        rows = await self._cql.execute(
            "read_refresh_token",
            "SELECT user_id, device_id, incarnation, expires_at FROM device_sessions "
            "WHERE token_hash = ?",
            (token_hash,),
        )
        if not rows:
            return None
        taken, _ = await self._cql.conditional(
            "take_refresh_token",
            "DELETE FROM device_sessions WHERE token_hash = ? IF EXISTS",
            (token_hash,),
        )
        row = rows[0]
        if not taken or row["expires_at"] <= now:
            return None
        device = DeviceAddress(row["user_id"], row["device_id"])
        if not await self._is_current(device, row["incarnation"]):
            return None
        return device, row["incarnation"]

    async def _is_current(self, device: DeviceAddress, incarnation: str) -> bool:
        rows = await self._cql.execute(
            "is_current",
            "SELECT incarnation FROM devices WHERE user_id = ? AND device_id = ?",
            (device.user_id, device.device_id),
        )
        return bool(rows) and rows[0]["incarnation"] == incarnation


# --- the statements of one registration's batch ---------------------------------------------


def _removals(claim: _Claim) -> list[Statement]:
    """Tombstones for every device row and key of the account, and for the removed devices'
    inboxes (their inbox_heads stay). Device 1's one-time prekeys are cleared at this
    attempt's own time, since an earlier attempt of the same registration may have written
    others."""
    at, user = claim.delete_time, claim.user_id
    statements = [
        Statement("DELETE FROM devices USING TIMESTAMP ? WHERE user_id = ?", (at, user)),
        Statement("DELETE FROM signed_prekeys USING TIMESTAMP ? WHERE user_id = ?", (at, user)),
        Statement(
            "DELETE FROM one_time_prekeys USING TIMESTAMP ? WHERE user_id = ? AND device_id = ?",
            (claim.write_time - 1, user, PRIMARY_DEVICE_ID),
        ),
    ]
    for device_id in claim.removed:
        for table in (*_INBOX_TABLES, "one_time_prekeys"):
            statements.append(
                Statement(
                    f"DELETE FROM {table} USING TIMESTAMP ? WHERE user_id = ? AND device_id = ?",
                    (at, user, device_id),
                )
            )
    return statements


def _account_writes(claim: _Claim, primary: NewDevice, now: float) -> list[Statement]:
    """The account row, device 1 and its keys, all at the claim's write time."""
    at, user, keys = claim.write_time, claim.user_id, primary.keys
    spk = keys.signed_prekey
    return [
        Statement(
            "INSERT INTO accounts (user_id, phone_number, identity_key, next_device_id, "
            "created_at) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?",
            (user, claim.phone_number, keys.identity_key, 2, claim.created_at, at),
        ),
        Statement(
            "INSERT INTO devices (user_id, device_id, incarnation, registration_id, kind, "
            "encrypted_name, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "USING TIMESTAMP ?",
            (
                user,
                PRIMARY_DEVICE_ID,
                claim.incarnation,
                primary.registration_id,
                int(primary.kind),
                primary.encrypted_name,
                now,
                now,
                at,
            ),
        ),
        Statement(
            "INSERT INTO signed_prekeys (user_id, device_id, key_id, public_key, signature) "
            "VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?",
            (user, PRIMARY_DEVICE_ID, spk.key_id, spk.public_key, spk.signature, at),
        ),
        *(
            Statement(
                "INSERT INTO one_time_prekeys (user_id, device_id, key_id, public_key) "
                "VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
                (user, PRIMARY_DEVICE_ID, k.key_id, k.public_key, at),
            )
            for k in keys.one_time_prekeys
        ),
    ]


def _completion(claim: _Claim, verification: Verification, now: float) -> Statement:
    """Marks the verification completed; written at the claim's time, so the latest claim's
    outcome wins whatever order the batches land in."""
    ttl = ttl_seconds(verification.expires_at + VERIFICATION_KEPT_SECONDS, now)
    return Statement(
        "UPDATE verifications USING TTL ? AND TIMESTAMP ? SET completed_request_id = ?, "
        "completed_user_id = ?, completed_incarnation = ?, completed_took_over = ? "
        "WHERE verification_id = ?",
        (
            ttl,
            claim.write_time,
            claim.request_id,
            claim.user_id,
            claim.incarnation,
            claim.took_over,
            verification.verification_id,
        ),
    )
