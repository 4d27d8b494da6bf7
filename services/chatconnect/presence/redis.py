"""Presence in Redis, shared by every gateway process of a region.

One hash per user, `{ns}:presence:{<user>}` (hash-tagged, so valid on Redis Cluster):
field `d:<device id>` holds a device's lease as "kind,state,last_active,expires_at", and
`seen` the last time the user went offline. Leases carry their own expiry (Redis 7.0 has no
per-field TTL), so a reader treats an expired lease as offline and its last heartbeat as last
seen; the whole hash expires `keep_seconds` after its last write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from chatconnect.model import DeviceAddress, DeviceKind
from chatconnect.presence.domain.models import DevicePresence, PresenceState, UserPresence
from chatconnect.presence.ports import PresenceStore
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.runtime.telemetry import storage_call

# KEYS[1] hash; ARGV: field, lease, now, state, keep_ms. Returns 1 if others see a change.
_HEARTBEAT = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
local changed = 1
if old then
  local _, _, state, expires = string.find(old, '^[^,]*,([^,]*),[^,]*,([^,]*)$')
  if tonumber(expires) > tonumber(ARGV[3]) and state == ARGV[4] then changed = 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return changed
"""

# KEYS[1] hash; ARGV: field, now, keep_ms. Returns 1 if the device was online.
_OFFLINE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
local was_online = 0
if old then
  local _, _, expires = string.find(old, ',([^,]*)$')
  if tonumber(expires) > tonumber(ARGV[2]) then was_online = 1 end
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local seen = tonumber(redis.call('HGET', KEYS[1], 'seen') or '0')
if tonumber(ARGV[2]) > seen then redis.call('HSET', KEYS[1], 'seen', ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return was_online
"""


class RedisPresenceStore(PresenceStore):
    """Leases and last seen in Redis hashes."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        namespace: str = "cc",
        keep_seconds: float = 30 * 24 * 3600.0,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._keep_ms = int(keep_seconds * 1000)
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._offline = client.register_script(_OFFLINE)

    def _key(self, user_id: str) -> str:
        return f"{self._namespace}:presence:{{{user_id}}}"

    async def heartbeat(
        self,
        device: DeviceAddress,
        kind: DeviceKind,
        state: PresenceState,
        now: float,
        *,
        ttl_seconds: float,
    ) -> bool:
        lease = f"{int(kind)},{int(state)},{now!r},{now + ttl_seconds!r}"
        args = [f"d:{device.device_id}", lease, repr(now), str(int(state)), self._keep_ms]
        return bool(await self._call("presence_heartbeat", self._heartbeat, device, args))

    async def went_offline(self, device: DeviceAddress, now: float) -> bool:
        args = [f"d:{device.device_id}", repr(now), self._keep_ms]
        return bool(await self._call("presence_offline", self._offline, device, args))

    async def _call(
        self, operation: str, script: AsyncScript, device: DeviceAddress, args: list[Any]
    ) -> Any:
        with storage_call("redis", operation):
            try:
                return await script(keys=[self._key(device.user_id)], args=args)
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(f"presence Redis did not answer: {exc}") from exc

    async def read(self, user_ids: Sequence[str], now: float) -> list[UserPresence]:
        with storage_call("redis", "presence_read"):
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for user_id in user_ids:
                        pipe.hgetall(self._key(user_id))
                    hashes = await pipe.execute()
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(f"presence Redis did not answer: {exc}") from exc
        return [_presence(u, h, now) for u, h in zip(user_ids, hashes, strict=True)]


def _presence(user_id: str, fields: dict[bytes, bytes], now: float) -> UserPresence:
    seen = float(fields[b"seen"]) if b"seen" in fields else None
    devices: list[DevicePresence] = []
    for name, value in fields.items():
        if not name.startswith(b"d:"):
            continue
        kind, state, last_active, expires_at = value.decode().split(",")
        if float(expires_at) <= now:
            seen = max(seen or 0.0, float(last_active))
            continue
        devices.append(
            DevicePresence(
                int(name[2:]), DeviceKind(int(kind)), PresenceState(int(state)), float(last_active)
            )
        )
    devices.sort(key=lambda d: d.device_id)
    return UserPresence(user_id, tuple(devices), seen)
