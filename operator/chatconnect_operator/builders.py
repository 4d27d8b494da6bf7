"""Pure builders: a region's typed specs in, Kubernetes object dicts out (docs/kubernetes.md).

Nothing here talks to the API server or reads the clock; `kube.apply` sends the result
with server-side apply, so an object is described whole, the same way every time. For a
region R of cluster C every object is named `C-R-<component>`, carries the five labels of
the contract and an owner reference to the ChatRegion (controller, blockOwnerDeletion),
so deleting the region lets the garbage collector delete them. The cluster-wide objects
are built in `cluster_builders`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chatconnect.runtime.load_reports import TURN_STATS_DB, turn_allocation_lifetime
from chatconnect_operator import podconfig
from chatconnect_operator.naming import (
    CHATCONNECT_COMPONENTS,
    CHATCONNECT_UID,
    CONFIG_DIR,
    CONFIG_FILE,
    CONFIG_HASH_ANNOTATION,
    COTURN_UID,
    DATA_DIR,
    GRPC_PORT,
    SECRETS_DIR,
    SHARD_MAP_DIR,
    TURN_PORT,
    TURN_SECRET_KEY,
    Owner,
    config_map_name,
    labels,
    object_name,
    selector_labels,
    shard_map_name,
    signing_key_name,
    turn_secret_name,
)
from chatconnect_operator.spec import ChatClusterSpec, ChatRegionSpec, RedisStore, Stores


@dataclass(frozen=True)
class Region:
    """Everything a region's objects are built from."""

    namespace: str
    cluster_name: str
    cluster: ChatClusterSpec
    name: str
    spec: ChatRegionSpec
    stores: Stores
    owner: Owner
    gateway_replicas: int | None = None
    """The autoscaler's last decision (ChatRegion status.gateway.replicas), if any."""
    turn_replicas: int | None = None


def _metadata(region: Region, name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": region.namespace,
        "labels": labels(region.cluster_name, region.name, component),
        "ownerReferences": [region.owner.reference()],
    }


def clamp(replicas: int | None, low: int, high: int) -> int:
    """The autoscaler's replicas within the spec's bounds (min when it has none yet)."""
    return min(max(replicas if replicas is not None else low, low), high)


def _settings_file(region: Region) -> str:
    return podconfig.settings_file(region.cluster_name, region.name, region.stores)


def region_config_map(region: Region) -> dict[str, Any]:
    name = config_map_name(region.cluster_name, region.name)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(region, name, "config"),
        "data": {CONFIG_FILE: _settings_file(region)},
    }


def _deployment(
    region: Region,
    component: str,
    replicas: int,
    pod_spec: dict[str, Any],
    annotations: Mapping[str, str],
) -> dict[str, Any]:
    name = object_name(region.cluster_name, region.name, component)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(region, name, component),
        "spec": {
            "replicas": replicas,
            "selector": {
                "matchLabels": selector_labels(region.cluster_name, region.name, component)
            },
            "template": {
                "metadata": {
                    "labels": labels(region.cluster_name, region.name, component),
                    "annotations": dict(annotations),
                },
                "spec": pod_spec,
            },
        },
    }


def chatconnect_deployment(region: Region, component: str) -> dict[str, Any]:
    """The Deployment running `chatconnect serve <component>`."""
    if component == "gateway":
        policy = region.spec.gateway.autoscaling
        replicas = clamp(region.gateway_replicas, policy.min_replicas, policy.max_replicas)
        resources = region.spec.gateway.resources
    else:
        replicas = region.spec.services[component].replicas
        resources = region.spec.services[component].resources
    probe = {"grpc": {"port": GRPC_PORT}}
    container = {
        "name": component,
        "image": f"{region.cluster.image}:{region.cluster.version}",
        "imagePullPolicy": region.cluster.image_pull_policy,
        "command": ["chatconnect"],
        "args": ["serve", component, "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"],
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"}],
        "env": podconfig.chatconnect_env(region.stores),
        "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {
            **probe,
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": {part: dict(values) for part, values in resources.items()},
        "securityContext": podconfig.container_security(CHATCONNECT_UID),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "shard-map", "mountPath": SHARD_MAP_DIR, "readOnly": True},
            {"name": "token-signing-key", "mountPath": SECRETS_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod_spec = _pod_spec(
        CHATCONNECT_UID,
        container,
        [
            {
                "name": "config",
                "configMap": {"name": config_map_name(region.cluster_name, region.name)},
            },
            {"name": "shard-map", "configMap": {"name": shard_map_name(region.cluster_name)}},
            {
                "name": "token-signing-key",
                "secret": {
                    "secretName": signing_key_name(region.cluster_name),
                    "defaultMode": 0o440,
                },
            },
            {"name": "data", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
        ],
    )
    # A new settings file rolls the pods (they read it at start); a new shard map does
    # not (they reload the mounted file), hence a hash of the former only.
    digest = hashlib.sha256(_settings_file(region).encode()).hexdigest()[:16]
    return _deployment(region, component, replicas, pod_spec, {CONFIG_HASH_ANNOTATION: digest})


TURN_REDIS_PASSWORD = "TURN_REDIS_PASSWORD"
"""The env var carrying the region's Redis password into coturn's statsdb argument."""


def _turn_statsdb(redis: RedisStore) -> str:
    """coturn's --redis-statsdb: the region's Redis host and port, DB TURN_STATS_DB. coturn
    has no TLS to Redis: with a rediss:// URL, TURN load cannot be read (docs say so)."""
    url = urlsplit(redis.url)
    parts = [f"ip={url.hostname}", f"port={url.port or 6379}", f"dbname={TURN_STATS_DB}"]
    if redis.password_secret:
        parts.append(f"password=$({TURN_REDIS_PASSWORD})")  # expanded by the kubelet
    return "--redis-statsdb=" + " ".join([*parts, "connect_timeout=30"])


def turn_deployment(region: Region) -> dict[str, Any]:
    """The coturn relays, authenticating with the TURN REST API shared secret."""
    turn = region.spec.turn
    replicas = clamp(
        region.turn_replicas, turn.autoscaling.min_replicas, turn.autoscaling.max_replicas
    )
    args = [
        "-n",
        "--log-file=stdout",
        "--no-cli",
        f"--listening-port={TURN_PORT}",
        "--fingerprint",
        f"--realm={region.cluster_name}",
        "--use-auth-secret",
        # Expanded by the kubelet from the env below, never written into the spec.
        "--static-auth-secret=$(TURN_STATIC_AUTH_SECRET)",
        "--pidfile=/tmp/turnserver.pid",
        # The operator counts live allocations in coturn's statsdb (TURN autoscaling);
        # see chatconnect.runtime.load_reports.
        _turn_statsdb(region.stores.redis),
        "--max-allocate-lifetime="
        f"{turn_allocation_lifetime(turn.autoscaling.scale_down_cooldown_seconds)}",
        *(f"--external-ip={address}" for address in turn.external_addresses),
    ]
    probe = {"tcpSocket": {"port": TURN_PORT}}
    container = {
        "name": "turn",
        "image": turn.image,
        "args": args,
        "ports": [
            {"name": "turn-udp", "containerPort": TURN_PORT, "protocol": "UDP"},
            {"name": "turn-tcp", "containerPort": TURN_PORT, "protocol": "TCP"},
        ],
        "env": [
            podconfig.secret_env(
                "TURN_STATIC_AUTH_SECRET", turn_secret_name(region.cluster_name), TURN_SECRET_KEY
            ),
            *(
                [
                    podconfig.secret_env(
                        TURN_REDIS_PASSWORD, region.stores.redis.password_secret, "password"
                    )
                ]
                if region.stores.redis.password_secret
                else []
            ),
        ],
        "readinessProbe": {**probe, "periodSeconds": 5},
        "livenessProbe": {**probe, "initialDelaySeconds": 10, "periodSeconds": 10},
        "resources": {part: dict(values) for part, values in turn.resources.items()},
        "securityContext": podconfig.container_security(COTURN_UID),
        "volumeMounts": [
            {"name": "coturn-data", "mountPath": "/var/lib/coturn"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    volumes = [{"name": "coturn-data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
    return _deployment(region, "turn", replicas, _pod_spec(COTURN_UID, container, volumes), {})


def _pod_spec(uid: int, container: dict[str, Any], volumes: list[Any]) -> dict[str, Any]:
    """A pod of one container: no API token (pods never call the API server), no service
    environment variables, the restricted security context."""
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": podconfig.pod_security(uid),
        "containers": [container],
        "volumes": volumes,
    }


def service(region: Region, component: str) -> dict[str, Any]:
    """The Service in front of one component's pods."""
    if component == "turn":
        ports = [
            {"name": "turn-udp", "port": TURN_PORT, "targetPort": TURN_PORT, "protocol": "UDP"},
            {"name": "turn-tcp", "port": TURN_PORT, "targetPort": TURN_PORT, "protocol": "TCP"},
        ]
    else:
        ports = [
            {
                "name": "grpc",
                "port": GRPC_PORT,
                "targetPort": "grpc",
                "protocol": "TCP",
                "appProtocol": "kubernetes.io/h2c",
            }
        ]
    name = object_name(region.cluster_name, region.name, component)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(region, name, component),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(region.cluster_name, region.name, component),
            "ports": ports,
        },
    }


def disruption_budget(region: Region, component: str) -> dict[str, Any]:
    name = object_name(region.cluster_name, region.name, component)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(region, name, component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {
                "matchLabels": selector_labels(region.cluster_name, region.name, component)
            },
        },
    }


def components(region: Region) -> tuple[str, ...]:
    """The Deployments a region runs."""
    return (*CHATCONNECT_COMPONENTS, "turn") if region.spec.turn.enabled else CHATCONNECT_COMPONENTS


def deployment(region: Region, component: str) -> dict[str, Any]:
    return (
        turn_deployment(region)
        if component == "turn"
        else chatconnect_deployment(region, component)
    )


def region_objects(region: Region) -> list[dict[str, Any]]:
    """Every object of a region, in apply order (the ConfigMap the pods read first)."""
    objects = [region_config_map(region)]
    for component in components(region):
        objects.extend(
            (
                deployment(region, component),
                service(region, component),
                disruption_budget(region, component),
            )
        )
    return objects


def retired_objects(region: Region) -> list[tuple[str, str]]:
    """(kind, name) of objects a region no longer has (TURN after it is disabled)."""
    if region.spec.turn.enabled:
        return []
    name = object_name(region.cluster_name, region.name, "turn")
    return [("Deployment", name), ("Service", name), ("PodDisruptionBudget", name)]
