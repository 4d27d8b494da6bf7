"""Presence in Redis, shared by every process of a region.

One hash per user, `{ns}:presence:{<user>}` (hash-tagged, so valid on Redis Cluster):
`k:<device>` its kind, `s:<device>` its state, `a:<device>` when it was last active
(ONLINE), and `h:<device>:<holder>` the lease end of each stream holding it. Leases carry
their own expiry (Redis 7.0 has no per-field TTL): a reader treats a lapsed lease as gone,
and every script prunes lapsed leases. The whole hash expires `keep_seconds` after its
last write. Request ids and last-seen write gates are plain keys with a TTL, tagged by
user as well.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from chatconnect.model import DeviceAddress, DeviceKind
from chatconnect.presence.domain.models import DevicePresence, PresenceState, UserPresence
from chatconnect.presence.ports import Holder, PresenceStore
from chatconnect.runtime.errors import StoreUnavailable
from chatconnect.runtime.telemetry import storage_call

# Shared by every script: KEYS[1] the user's hash; ARGV[1] now, ARGV[2] keep_ms.
_PRELUDE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local fields = redis.call('HGETALL', key)
local h = {}
for i = 1, #fields, 2 do h[fields[i]] = fields[i + 1] end
local function live(dev)
  local prefix = 'h:' .. dev .. ':'
  for name, value in pairs(h) do
    if string.sub(name, 1, #prefix) == prefix and tonumber(value) > now then return true end
  end
  return false
end
local function prune()
  for name, value in pairs(h) do
    if string.sub(name, 1, 2) == 'h:' and tonumber(value) <= now then
      redis.call('HDEL', key, name)
      h[name] = nil
    end
  end
end
local function set(name, value)
  redis.call('HSET', key, name, value)
  h[name] = value
end
local function state(dev) return h['s:' .. dev] or '1' end
-- Leases `holder` of `dev` until `expires`; 1 when the device comes back (back ONLINE).
local function lease(dev, holder, kind, expires)
  local was = live(dev)
  if not was then set('s:' .. dev, '1') end
  set('k:' .. dev, kind)
  set('h:' .. dev .. ':' .. holder, expires)
  if state(dev) == '1' then set('a:' .. dev, ARGV[1]) end
  if was then return 0 end
  return 1
end
local function keep() redis.call('PEXPIRE', key, ARGV[2]) end
"""

# ARGV[3..]: expires, then (device, holder, kind) triples. Returns the devices back.
_RENEW = (
    _PRELUDE
    + """
prune()
local back = {}
for i = 4, #ARGV, 3 do
  if lease(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[3]) == 1 then
    table.insert(back, ARGV[i])
  end
end
keep()
return back
"""
)

# ARGV[3] device, ARGV[4] holder. Returns 1 when the device went offline visibly.
_RELEASE = (
    _PRELUDE
    + """
local dev = ARGV[3]
local was = live(dev) and state(dev) ~= '3'
redis.call('HDEL', key, 'h:' .. dev .. ':' .. ARGV[4])
h['h:' .. dev .. ':' .. ARGV[4]] = nil
prune()
if live(dev) then return 0 end
if was and state(dev) == '1' then set('a:' .. dev, ARGV[1]) end
keep()
if was then return 1 end
return 0
"""
)

# ARGV[3] device, ARGV[4] state. Returns -1 (not connected), 0 (same) or 1 (changed).
_SET_STATE = (
    _PRELUDE
    + """
local dev = ARGV[3]
if not live(dev) then return -1 end
local old = state(dev)
if old == '1' or ARGV[4] == '1' then set('a:' .. dev, ARGV[1]) end
set('s:' .. dev, ARGV[4])
keep()
if old == ARGV[4] then return 0 end
return 1
"""
)


class RedisPresenceStore(PresenceStore):
    """Leases, state and last activity in Redis hashes."""

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
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._set_state = client.register_script(_SET_STATE)

    def _key(self, user_id: str) -> str:
        return f"{self._namespace}:presence:{{{user_id}}}"

    async def hold(self, holder: Holder, now: float, *, ttl_seconds: float) -> bool:
        return bool(await self.renew([holder], now, ttl_seconds=ttl_seconds))

    async def renew(
        self, holders: Sequence[Holder], now: float, *, ttl_seconds: float
    ) -> list[DeviceAddress]:
        if not holders:
            return []
        by_user: dict[str, list[Holder]] = defaultdict(list)
        for holder in holders:
            by_user[holder.device.user_id].append(holder)
        users = list(by_user)
        with storage_call("redis", "presence_renew"):
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for user_id in users:
                        args: list[Any] = [repr(now), self._keep_ms, repr(now + ttl_seconds)]
                        for h in by_user[user_id]:
                            args += [h.device.device_id, h.holder_id, int(h.kind)]
                        await self._renew(keys=[self._key(user_id)], args=args, client=pipe)
                    results = await pipe.execute()
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(f"presence Redis did not answer: {exc}") from exc
        return [
            DeviceAddress(user_id, int(device_id))
            for user_id, back in zip(users, results, strict=True)
            for device_id in back
        ]

    async def release(self, holder: Holder, now: float) -> bool:
        args = [repr(now), self._keep_ms, holder.device.device_id, holder.holder_id]
        return bool(
            await self._call("presence_release", self._release, holder.device.user_id, args)
        )

    async def set_state(
        self, device: DeviceAddress, state: PresenceState, now: float
    ) -> bool | None:
        args = [repr(now), self._keep_ms, device.device_id, int(state)]
        result = int(await self._call("presence_set_state", self._set_state, device.user_id, args))
        return None if result < 0 else bool(result)

    async def _call(
        self, operation: str, script: AsyncScript, user_id: str, args: list[Any]
    ) -> Any:
        with storage_call("redis", operation):
            try:
                return await script(keys=[self._key(user_id)], args=args)
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(f"presence Redis did not answer: {exc}") from exc

    async def read(self, user_ids: Sequence[str], now: float) -> list[UserPresence]:
        hashes = await self._hashes(user_ids)
        return [_presence(u, h, now) for u, h in zip(user_ids, hashes, strict=True)]

    async def _hashes(self, user_ids: Sequence[str]) -> list[dict[bytes, bytes]]:
        with storage_call("redis", "presence_read"):
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for user_id in user_ids:
                        pipe.hgetall(self._key(user_id))
                    return list(await pipe.execute())
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(f"presence Redis did not answer: {exc}") from exc

    async def open_stream(self, device: DeviceAddress, now: float) -> str | None:
        [fields] = await self._hashes([device.user_id])
        prefix = f"h:{device.device_id}:s".encode()
        for name, value in fields.items():
            if name.startswith(prefix) and float(value) > now:
                return name.decode().split(":", 2)[2]
        return None

    async def claim_write(self, user_id: str, *, interval_seconds: float) -> bool:
        key = f"{self._namespace}:presence-lsw:{{{user_id}}}"
        with storage_call("redis", "presence_claim_write"):
            try:
                claimed = await self._client.set(
                    key, b"1", nx=True, px=max(int(interval_seconds * 1000), 1)
                )
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(f"presence Redis did not answer: {exc}") from exc
        return bool(claimed)

    def _request_key(self, device: DeviceAddress, request_id: str) -> str:
        return (
            f"{self._namespace}:presence-req:{{{device.user_id}}}:{device.device_id}:{request_id}"
        )

    async def remember(
        self, device: DeviceAddress, request_id: str, result: str, *, ttl_seconds: float
    ) -> str:
        key = self._request_key(device, request_id)
        with storage_call("redis", "presence_remember"):
            try:
                kept = await self._client.set(
                    key, result.encode(), nx=True, get=True, px=max(int(ttl_seconds * 1000), 1)
                )
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(f"presence Redis did not answer: {exc}") from exc
        return result if kept is None else _text(kept)

    async def recall(self, device: DeviceAddress, request_id: str) -> str | None:
        with storage_call("redis", "presence_recall"):
            try:
                kept = await self._client.get(self._request_key(device, request_id))
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(f"presence Redis did not answer: {exc}") from exc
        return None if kept is None else _text(kept)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _presence(user_id: str, fields: dict[bytes, bytes], now: float) -> UserPresence:
    kinds: dict[int, DeviceKind] = {}
    states: dict[int, PresenceState] = {}
    active: dict[int, float] = {}
    leases: dict[int, float] = {}
    for raw_name, raw_value in fields.items():
        name, value = raw_name.decode(), raw_value.decode()
        kind, _, rest = name.partition(":")
        device_id = int(rest.split(":", 1)[0])
        if kind == "k":
            kinds[device_id] = DeviceKind(int(value))
        elif kind == "s":
            states[device_id] = PresenceState(int(value))
        elif kind == "a":
            active[device_id] = float(value)
        elif kind == "h" and float(value) > now:
            leases[device_id] = max(leases.get(device_id, 0.0), float(value))
    devices: list[DevicePresence] = []
    seen: float | None = None
    for device_id in sorted(kinds):
        state = states.get(device_id, PresenceState.ONLINE)
        last_active = active.get(device_id)
        connected = device_id in leases and state != PresenceState.OFFLINE
        if connected and last_active is not None:
            devices.append(
                DevicePresence(device_id, kinds[device_id], state, last_active, leases[device_id])
            )
        if last_active is not None and not (connected and state == PresenceState.ONLINE):
            seen = max(seen or last_active, last_active)
    return UserPresence(user_id, tuple(devices), seen)
