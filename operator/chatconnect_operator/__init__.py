"""The ChatConnect Kubernetes operator (kopf): ChatCluster and ChatRegion custom resources.

Layout, outside in: `main` (kopf settings only) imports `handlers` (thin kopf handlers),
which call `reconcile` (one region's objects) and `cluster_sync` (failover, shard map);
those use the pure decision modules (`spec`, `autoscaling`, `placement`, `failover`,
`builders`, `conditions`) and the I/O adapters (`kube`, `health`, `load`).
The contract is docs/kubernetes.md.
"""

from __future__ import annotations

GROUP = "chatconnect.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CLUSTERS = "chatclusters"
REGIONS = "chatregions"
CLUSTER_KIND = "ChatCluster"
REGION_KIND = "ChatRegion"
