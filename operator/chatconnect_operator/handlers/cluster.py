"""ChatCluster handlers: on every change, and on the failover timer.

A change validates the spec, makes sure the generated Secrets exist, runs a failover and
shard-map pass, and re-reconciles the cluster's regions (a new version or new store
endpoints change their objects). The timer runs the failover and shard-map pass alone.
"""

from __future__ import annotations

from typing import Any

import kopf

from chatconnect_operator import CLUSTERS, GROUP, REGIONS, VERSION, conditions
from chatconnect_operator.cluster_sync import PublishConflict, ensure_secrets, sync_cluster
from chatconnect_operator.handlers.common import SETTINGS, kube_of, utcnow
from chatconnect_operator.reconcile import RegionBlocked, reconcile_region
from chatconnect_operator.spec import parse_cluster
from chatconnect_operator.specfields import SpecError


@kopf.on.create(GROUP, VERSION, CLUSTERS)
@kopf.on.update(GROUP, VERSION, CLUSTERS)
@kopf.on.resume(GROUP, VERSION, CLUSTERS)
async def cluster_changed(
    body: kopf.Body, meta: kopf.Meta, logger: kopf.Logger, memo: kopf.Memo, **_: Any
) -> None:
    kube = kube_of(memo)
    namespace, name = meta["namespace"], meta["name"]
    try:
        spec = parse_cluster(body.get("spec"))
    except SpecError as error:
        invalid = conditions.condition(
            conditions.READY, "False", "InvalidSpec", str(error), generation=meta.get("generation")
        )

        def mutate(current: Any) -> dict[str, Any]:
            status = current.get("status") or {}
            merged = conditions.merge(status.get("conditions"), [invalid], utcnow())
            return {"conditions": merged, "observedGeneration": meta.get("generation")}

        await kube.update_status(CLUSTERS, namespace, name, mutate)
        raise kopf.PermanentError(str(error)) from None
    await ensure_secrets(kube, body, logger)
    try:
        await sync_cluster(kube, body, spec, utcnow(), logger, observed=True)
    except PublishConflict as conflict:
        raise kopf.TemporaryError(f"{conflict}; retrying", delay=1) from None
    for region in await kube.list_objects(REGIONS, namespace):
        if (region.get("spec") or {}).get("cluster") != name:
            continue
        try:
            await reconcile_region(kube, region, body)
        except (SpecError, RegionBlocked) as error:
            # Reported on the region itself; the cluster is fine.
            logger.warning("region %s not reconciled: %s", region["metadata"]["name"], error)


@kopf.timer(GROUP, VERSION, CLUSTERS, interval=SETTINGS.failover_interval)
async def failover_pass(meta: kopf.Meta, logger: kopf.Logger, memo: kopf.Memo, **_: Any) -> None:
    kube = kube_of(memo)
    # Fresh, not the timer's cached body: the recorded epoch must be the latest one.
    cluster = await kube.get(CLUSTERS, meta["namespace"], meta["name"])
    if cluster is None:
        return
    try:
        spec = parse_cluster(cluster.get("spec"))
    except SpecError:
        return  # reported by cluster_changed; nothing to decide on
    try:
        await sync_cluster(kube, cluster, spec, utcnow(), logger, observed=False)
    except PublishConflict:
        logger.debug("the shard map changed during this pass; the next one decides again")
