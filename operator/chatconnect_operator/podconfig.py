"""What runs inside a ChatConnect pod: its settings file, environment and security context.

The settings file holds only `chatconnect config` settings (it is checked against the
service's own loader in the tests). Secrets never enter it: scylla credentials and the
Redis password reach the process as environment variables read from Secrets by the
kubelet.
"""

from __future__ import annotations

from typing import Any

from chatconnect_operator import tomlfile
from chatconnect_operator.naming import (
    DATA_DIR,
    GRPC_PORT,
    SECRETS_DIR,
    SHARD_MAP_DIR,
    SHARD_MAP_KEY,
    SIGNING_KEY_KEY,
)
from chatconnect_operator.spec import Stores


def settings_file(cluster: str, region: str, store: Stores) -> str:
    """The region's chatconnect.toml (every key is a `chatconnect config` setting)."""
    return tomlfile.render(
        {
            "server": {
                "listen": f"0.0.0.0:{GRPC_PORT}",
                "data_dir": DATA_DIR,
                "store": "scylla",
                "bus": "redis",
                # Without the password: it comes from a Secret, see redis_env.
                "redis_url": store.redis.url,
            },
            "auth": {"signing_key_file": f"{SECRETS_DIR}/{SIGNING_KEY_KEY}"},
            "logging": {"format": "json"},
            "scylla": {
                "contact_points": ",".join(store.scylla.contact_points),
                "port": store.scylla.port,
                "local_dc": store.scylla.local_datacenter,
                "keyspace": store.scylla.keyspace,
            },
            "sharding": {
                "region": region,
                "map_file": f"{SHARD_MAP_DIR}/{SHARD_MAP_KEY}",
            },
        },
        header=f"ChatConnect settings of region {region} of ChatCluster "
        f"{cluster}.\nWritten by the ChatConnect operator: edits are overwritten.",
    )


def secret_env(variable: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def redis_env(
    url: str, password_secret: str, *, variable: str = "CHATCONNECT_REDIS_PASSWORD"
) -> list[dict[str, Any]]:
    """The Redis URL with the password spliced in by the kubelet's $(VAR) expansion, so
    the password never appears in a ConfigMap or the pod spec. It must be URL-safe
    (letters, digits, -._~), as the kubelet cannot percent-encode it."""
    scheme, rest = url.split("://", 1)
    user = ""
    if "@" in rest.split("/", 1)[0]:
        user, rest = rest.split("@", 1)
    return [
        secret_env(variable, password_secret, "password"),
        {
            "name": "CHATCONNECT_SERVER__REDIS_URL",
            "value": f"{scheme}://{user}:$({variable})@{rest}",
        },
    ]


def chatconnect_env(store: Stores) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {
            "name": "CHATCONNECT_SERVER__INSTANCE_ID",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
        }
    ]
    scylla, redis = store.scylla, store.redis
    if scylla.credentials_secret:
        env.append(
            secret_env("CHATCONNECT_SCYLLA__USERNAME", scylla.credentials_secret, "username")
        )
        env.append(
            secret_env("CHATCONNECT_SCYLLA__PASSWORD", scylla.credentials_secret, "password")
        )
    if redis.password_secret:
        env.extend(redis_env(redis.url, redis.password_secret))
    return env


def container_security(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security(uid: int) -> dict[str, Any]:
    # fsGroup makes the mounted Secret (mode 0440) readable by the non-root user.
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
