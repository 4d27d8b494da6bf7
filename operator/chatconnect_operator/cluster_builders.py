"""Pure builders of the cluster-wide objects, owned by the ChatCluster: the published
shard map and the Secrets generated once per cluster (see `keys`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chatconnect.sharding.shardmap import ShardMap
from chatconnect_operator.naming import (
    SHARD_MAP_KEY,
    SIGNING_KEY_KEY,
    TURN_SECRET_KEY,
    Owner,
    cluster_labels,
    shard_map_name,
)


def shard_map_config_map(
    namespace: str, cluster: str, owner: Owner, shard_map: ShardMap
) -> dict[str, Any]:
    """The published shard map (mounted into every ChatConnect pod)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": shard_map_name(cluster),
            "namespace": namespace,
            "labels": cluster_labels(cluster, "shard-map"),
            "ownerReferences": [owner.reference()],
        },
        "data": {SHARD_MAP_KEY: shard_map.to_json()},
    }


def _secret(
    namespace: str, cluster: str, component: str, owner: Owner, data: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": f"{cluster}-{component}",
            "namespace": namespace,
            "labels": cluster_labels(cluster, component),
            "ownerReferences": [owner.reference()],
        },
        "stringData": dict(data),
    }


def signing_key_secret(namespace: str, cluster: str, owner: Owner, pem: bytes) -> dict[str, Any]:
    """The token-signing key Secret (created once; see keys.generate_signing_key_pem)."""
    return _secret(namespace, cluster, "token-signing-key", owner, {SIGNING_KEY_KEY: pem.decode()})


def turn_secret(namespace: str, cluster: str, owner: Owner, secret: str) -> dict[str, Any]:
    """The TURN REST API shared secret (created once; see keys.generate_turn_secret)."""
    return _secret(namespace, cluster, "turn-secret", owner, {TURN_SECRET_KEY: secret})
