"""Names, labels, ports and paths shared by the builders (docs/kubernetes.md, "What the
operator creates"): one place, so a test and the builders cannot disagree on a name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatconnect_operator.spec import SERVICES

GRPC_PORT = 7600
TURN_PORT = 3478
CHATCONNECT_UID = 10001
COTURN_UID = 65534  # "nobody", the user the coturn image runs as
CONFIG_DIR = "/etc/chatconnect/config"
CONFIG_FILE = "chatconnect.toml"
SHARD_MAP_DIR = "/etc/chatconnect/shard-map"
SHARD_MAP_KEY = "shard-map.json"
SECRETS_DIR = "/etc/chatconnect/secrets"
SIGNING_KEY_KEY = "token-signing-key.pem"
TURN_SECRET_KEY = "static-auth-secret"
DATA_DIR = "/var/lib/chatconnect"
CHATCONNECT_COMPONENTS = ("gateway", *SERVICES)
MANAGED_BY = "chatconnect-operator"
CONFIG_HASH_ANNOTATION = "chatconnect.io/config-hash"


@dataclass(frozen=True)
class Owner:
    """The object that owns what is built (a ChatRegion or a ChatCluster)."""

    api_version: str
    kind: str
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        """An ownerReference in the form kopf.adopt writes."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def object_name(cluster: str, region: str, component: str) -> str:
    return f"{cluster}-{region}-{component}"


def config_map_name(cluster: str, region: str) -> str:
    return object_name(cluster, region, "config")


def shard_map_name(cluster: str) -> str:
    return f"{cluster}-shard-map"


def signing_key_name(cluster: str) -> str:
    return f"{cluster}-token-signing-key"


def turn_secret_name(cluster: str) -> str:
    return f"{cluster}-turn-secret"


def selector_labels(cluster: str, region: str, component: str) -> dict[str, str]:
    """The labels that identify one component's pods (Deployment and Service selectors)."""
    return {
        "app.kubernetes.io/name": "chatconnect",
        "app.kubernetes.io/instance": cluster,
        "app.kubernetes.io/component": component,
        "chatconnect.io/region": region,
    }


def labels(cluster: str, region: str, component: str) -> dict[str, str]:
    """The contract's five labels of every object of a region."""
    return {
        **selector_labels(cluster, region, component),
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def cluster_labels(cluster: str, component: str) -> dict[str, str]:
    """Labels of the cluster-wide objects (no region)."""
    return {
        "app.kubernetes.io/name": "chatconnect",
        "app.kubernetes.io/instance": cluster,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
