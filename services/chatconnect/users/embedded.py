"""Embedded (SQLite) adapters of the users service, and the logging code provider."""

from __future__ import annotations

from chatconnect.model import DeviceAddress
from chatconnect.runtime.logging import get_logger
from chatconnect.storage.sqlite import Database, Row, Transaction
from chatconnect.users.domain.models import NewDevice, Registration, Verification
from chatconnect.users.ports import AccountStore, VerificationProvider

log = get_logger("users.provider")


def _verification(row: Row) -> Verification:
    return Verification(
        verification_id=row["verification_id"],
        phone_number=row["phone_number"],
        request_id=row["request_id"],
        code_hash=row["code_hash"],
        expires_at=row["expires_at"],
        attempts=row["attempts"],
        completed_request_id=row["completed_request_id"],
        completed_user_id=row["completed_user_id"],
        completed_incarnation=row["completed_incarnation"],
        completed_took_over=bool(row["completed_took_over"]),
    )


async def insert_device(tx: Transaction, device: DeviceAddress, new: NewDevice, now: float) -> None:
    """Creates a device row and its signed and one-time prekeys."""
    await tx.execute(
        "INSERT INTO devices (user_id, device_id, incarnation, registration_id, kind, "
        "encrypted_name, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            device.user_id,
            device.device_id,
            new.incarnation,
            new.registration_id,
            int(new.kind),
            new.encrypted_name,
            now,
            now,
        ),
    )
    spk = new.keys.signed_prekey
    await tx.execute(
        "INSERT OR REPLACE INTO signed_prekeys VALUES (?, ?, ?, ?, ?)",
        (device.user_id, device.device_id, spk.key_id, spk.public_key, spk.signature),
    )
    await tx.executemany(
        "INSERT OR IGNORE INTO one_time_prekeys VALUES (?, ?, ?, ?)",
        [
            (device.user_id, device.device_id, k.key_id, k.public_key)
            for k in new.keys.one_time_prekeys
        ],
    )


async def delete_device(tx: Transaction, device: DeviceAddress) -> None:
    """Removes a device with its sessions, keys and inbox (its inbox head stays, so
    sequences are never reused)."""
    params = (device.user_id, device.device_id)
    for table in (
        "devices",
        "device_sessions",
        "signed_prekeys",
        "one_time_prekeys",
        "inbox",
        "inbox_gaps",
    ):
        await tx.execute(f"DELETE FROM {table} WHERE user_id = ? AND device_id = ?", params)


class SqliteAccountStore(AccountStore):
    """Accounts in the embedded database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_verification(self, verification: Verification) -> Verification:
        async with self._db.write("create_verification") as tx:
            existing = await tx.fetchone(
                "SELECT * FROM verifications WHERE phone_number = ? AND request_id = ?",
                (verification.phone_number, verification.request_id),
            )
            if existing is not None:
                return _verification(existing)
            await tx.execute(
                "INSERT INTO verifications (verification_id, phone_number, request_id, "
                "code_hash, expires_at) VALUES (?, ?, ?, ?, ?)",
                (
                    verification.verification_id,
                    verification.phone_number,
                    verification.request_id,
                    verification.code_hash,
                    verification.expires_at,
                ),
            )
            return verification

    async def get_verification(self, verification_id: str) -> Verification | None:
        row = await self._db.fetchone(
            "get_verification",
            "SELECT * FROM verifications WHERE verification_id = ?",
            (verification_id,),
        )
        return _verification(row) if row else None

    async def reserve_attempt(self, verification_id: str, *, max_attempts: int) -> bool:
        async with self._db.write("reserve_attempt") as tx:
            row = await tx.fetchone(
                "UPDATE verifications SET attempts = attempts + 1 "
                "WHERE verification_id = ? AND attempts < ? RETURNING attempts",
                (verification_id, max_attempts),
            )
            return row is not None

    async def register(
        self,
        *,
        verification: Verification,
        request_id: str,
        new_user_id: str,
        primary: NewDevice,
        now: float,
    ) -> Registration:
        async with self._db.write("register") as tx:
            current = await tx.fetchone(
                "SELECT completed_request_id, completed_user_id, completed_incarnation, "
                "completed_took_over FROM verifications WHERE verification_id = ?",
                (verification.verification_id,),
            )
            if current is not None and current["completed_request_id"] == request_id:
                # A concurrent retry finished first.
                return Registration(
                    current["completed_user_id"],
                    current["completed_incarnation"],
                    took_over=bool(current["completed_took_over"]),
                )
            account = await tx.fetchone(
                "SELECT user_id FROM accounts WHERE phone_number = ?",
                (verification.phone_number,),
            )
            removed: list[DeviceAddress] = []
            if account is None:
                user_id = new_user_id
                await tx.execute(
                    "INSERT INTO accounts VALUES (?, ?, ?, ?, ?)",
                    (user_id, verification.phone_number, primary.keys.identity_key, 2, now),
                )
            else:
                user_id = account["user_id"]
                rows = await tx.fetchall(
                    "SELECT device_id FROM devices WHERE user_id = ?", (user_id,)
                )
                removed = [DeviceAddress(user_id, r["device_id"]) for r in rows]
                for device in removed:
                    await delete_device(tx, device)
                await tx.execute(
                    "UPDATE accounts SET identity_key = ?, next_device_id = 2 WHERE user_id = ?",
                    (primary.keys.identity_key, user_id),
                )
            await insert_device(tx, DeviceAddress(user_id, 1), primary, now)
            await tx.execute(
                "UPDATE verifications SET completed_request_id = ?, completed_user_id = ?, "
                "completed_incarnation = ?, completed_took_over = ? WHERE verification_id = ?",
                (
                    request_id,
                    user_id,
                    primary.incarnation,
                    account is not None,
                    verification.verification_id,
                ),
            )
            return Registration(user_id, primary.incarnation, account is not None, tuple(removed))

    async def save_refresh_token(
        self, token_hash: bytes, device: DeviceAddress, incarnation: str, expires_at: float
    ) -> None:
        async with self._db.write("save_refresh_token") as tx:
            await tx.execute(
                "INSERT INTO device_sessions VALUES (?, ?, ?, ?, ?)",
                (token_hash, device.user_id, device.device_id, incarnation, expires_at),
            )

    async def take_refresh_token(
        self, token_hash: bytes, now: float
    ) -> tuple[DeviceAddress, str] | None:
        async with self._db.write("take_refresh_token") as tx:
            row = await tx.fetchone(
                "DELETE FROM device_sessions WHERE token_hash = ? "
                "RETURNING user_id, device_id, incarnation, expires_at",
                (token_hash,),
            )
            if row is None or row["expires_at"] <= now:
                return None
            current = await tx.fetchone(
                "SELECT 1 FROM devices WHERE user_id = ? AND device_id = ? AND incarnation = ?",
                (row["user_id"], row["device_id"], row["incarnation"]),
            )
            if current is None:
                return None
            return DeviceAddress(row["user_id"], row["device_id"]), row["incarnation"]


class LogVerificationProvider(VerificationProvider):
    """Writes codes to the server log instead of sending them. Development only."""

    async def send_code(self, phone_number: str, code: str, *, locale: str) -> None:
        log.warning(
            "verification code (log provider: development only, no SMS is sent)",
            phone_number=phone_number,
            code=code,
        )
