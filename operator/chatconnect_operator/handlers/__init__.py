"""The kopf handlers, thin: parse, call `reconcile` / `cluster_sync`, map errors to kopf.

Importing this package registers every handler with kopf's default registry.
"""

from __future__ import annotations

from chatconnect_operator.handlers import autoscale, cluster, health, lifecycle, region

__all__ = ["autoscale", "cluster", "health", "lifecycle", "region"]
