"""Reconciling one ChatRegion: its Deployments, Services, PDBs and ConfigMap, then its
Ready/Progressing conditions.

Called by the region's own handlers and by its ChatCluster's (a new version or new store
endpoints change every region's objects). Idempotent: the builders describe the whole
desired state and `Kube.apply` sends it with server-side apply, so running it twice, or
from two handlers at once, converges on the same objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from chatconnect_operator import API_VERSION, CLUSTERS, REGION_KIND, REGIONS, builders, conditions
from chatconnect_operator.kube import Kube
from chatconnect_operator.naming import Owner
from chatconnect_operator.spec import parse_cluster, parse_region
from chatconnect_operator.specfields import SpecError


class RegionBlocked(Exception):
    """The region cannot be reconciled until something else changes (its cluster);
    `reason` is the condition reason, the message says what to fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _replicas(status: Mapping[str, Any], component: str) -> int | None:
    value = (status.get(component) or {}).get("replicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def region_model(region: Mapping[str, Any], cluster: Mapping[str, Any] | None) -> builders.Region:
    """The builders' input for `region` of `cluster`.

    Raises SpecError for a bad ChatRegion spec (a PermanentError: only a new region spec
    helps) and RegionBlocked when the fault is on the cluster's side.
    """
    meta = region["metadata"]
    spec = parse_region(region.get("spec"), name=meta["name"])
    if cluster is None:
        raise RegionBlocked(
            "ClusterNotFound", f"ChatCluster {spec.cluster} does not exist in {meta['namespace']}"
        )
    try:
        cluster_spec = parse_cluster(cluster.get("spec"))
    except SpecError as error:
        raise RegionBlocked("ClusterInvalid", f"ChatCluster {spec.cluster}: {error}") from None
    stores = cluster_spec.stores_of(meta["name"])
    if stores is None:
        raise RegionBlocked(
            "NoStores",
            f"ChatCluster {spec.cluster} has no spec.stores entry for region {meta['name']}",
        )
    status = region.get("status") or {}
    return builders.Region(
        namespace=meta["namespace"],
        cluster_name=spec.cluster,
        cluster=cluster_spec,
        name=meta["name"],
        spec=spec,
        stores=stores,
        owner=Owner(API_VERSION, REGION_KIND, meta["name"], meta["uid"]),
        gateway_replicas=_replicas(status, "gateway"),
        turn_replicas=_replicas(status, "turn"),
    )


async def set_conditions(
    kube: Kube, region: Mapping[str, Any], updates: list[dict[str, Any]], *, observed: bool
) -> None:
    """Merges `updates` into the region's conditions (and observedGeneration when the
    spec of this generation has been acted on)."""
    meta = region["metadata"]

    def mutate(current: Mapping[str, Any]) -> dict[str, Any] | None:
        status = current.get("status") or {}
        merged = conditions.merge(status.get("conditions"), updates, datetime.now(UTC))
        patch: dict[str, Any] = {}
        if merged != status.get("conditions"):
            patch["conditions"] = merged
        generation = meta.get("generation")
        if observed and generation is not None and status.get("observedGeneration") != generation:
            patch["observedGeneration"] = generation
        return patch or None

    await kube.update_status(REGIONS, meta["namespace"], meta["name"], mutate)


async def report_blocked(kube: Kube, region: Mapping[str, Any], blocked: RegionBlocked) -> None:
    """Ready=False (and Progressing) with what the region waits for; a no-op when the
    conditions already say so, so timers may call it on every tick."""
    generation = region["metadata"].get("generation")
    updates = [
        conditions.condition(
            conditions.READY, "False", blocked.reason, str(blocked), generation=generation
        ),
        conditions.condition(
            conditions.PROGRESSING, "True", blocked.reason, str(blocked), generation=generation
        ),
    ]
    await set_conditions(kube, region, updates, observed=False)


async def reconcile_region(
    kube: Kube, region: Mapping[str, Any], cluster: Mapping[str, Any] | None
) -> None:
    """Applies every object of `region` and reports it in the conditions.

    Raises SpecError (bad region spec) and RegionBlocked (waiting for the cluster) after
    recording them as Ready=False.
    """
    generation = region["metadata"].get("generation")

    def both(
        ready: conditions.Status, progressing: conditions.Status, reason: str, message: str
    ) -> list[dict[str, Any]]:
        """Ready and Progressing, for the same reason."""
        return [
            conditions.condition(conditions.READY, ready, reason, message, generation=generation),
            conditions.condition(
                conditions.PROGRESSING, progressing, reason, message, generation=generation
            ),
        ]

    try:
        model = region_model(region, cluster)
    except SpecError as error:
        updates = both("False", "False", "InvalidSpec", str(error))
        await set_conditions(kube, region, updates, observed=True)
        raise
    except RegionBlocked as blocked:
        await report_blocked(kube, region, blocked)
        raise
    for obj in builders.region_objects(model):
        await kube.apply(obj)
    for kind, name in builders.retired_objects(model):
        await kube.delete(kind, model.namespace, name)
    count = len(builders.components(model))
    message = f"{count} Deployments with their Services and PodDisruptionBudgets applied"
    await set_conditions(kube, region, both("True", "False", "Reconciled", message), observed=True)


async def cluster_of(kube: Kube, region: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ChatCluster a region names (None when the name is missing or unknown)."""
    name = (region.get("spec") or {}).get("cluster")
    if not isinstance(name, str) or not name:
        return None
    return await kube.get(CLUSTERS, region["metadata"]["namespace"], name)


def as_kopf_error(
    error: Exception, retry_delay: float
) -> kopf.PermanentError | kopf.TemporaryError:
    """The kopf outcome of a reconcile failure: a bad spec is permanent, waiting is not."""
    if isinstance(error, SpecError):
        return kopf.PermanentError(str(error))
    return kopf.TemporaryError(str(error), delay=retry_delay)
