"""One pass over a ChatCluster: failover decisions, the shard map, and every status.

Run on each cluster change and on the cluster's failover timer. Order matters: the map is
published first (with the ConfigMap's resourceVersion as a precondition, so two passes
can never publish two different maps under one epoch), and only then are the regions'
`failedOver` latches, Events and conditions written. A pass that fails before publishing
leaves the latches as they were; the next one reaches the same decisions, since they
depend only on the recorded health timeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import kopf

from chatconnect.sharding.shardmap import ShardMap, ShardMapInvalid
from chatconnect_operator import (
    API_VERSION,
    CLUSTER_KIND,
    CLUSTERS,
    REGIONS,
    cluster_builders,
    conditions,
    failover,
    keys,
    placement,
)
from chatconnect_operator.conditions import parse_timestamp
from chatconnect_operator.kube import Kube, as_body, is_conflict
from chatconnect_operator.naming import SHARD_MAP_KEY, Owner, shard_map_name
from chatconnect_operator.spec import ChatClusterSpec


class PublishConflict(Exception):
    """Another pass published the shard map between our read and our write; the next
    pass decides again from the new map."""


def cluster_owner(cluster: Mapping[str, Any]) -> Owner:
    meta = cluster["metadata"]
    return Owner(API_VERSION, CLUSTER_KIND, meta["name"], meta["uid"])


async def ensure_secrets(kube: Kube, cluster: Mapping[str, Any], logger: kopf.Logger) -> None:
    """The token-signing key and the TURN secret: generated once, never regenerated."""
    meta = cluster["metadata"]
    namespace, name, owner = meta["namespace"], meta["name"], cluster_owner(cluster)
    signing = cluster_builders.signing_key_secret(
        namespace, name, owner, keys.generate_signing_key_pem()
    )
    if await kube.create_once(signing):
        logger.info("generated the token-signing key Secret %s", signing["metadata"]["name"])
    turn = cluster_builders.turn_secret(namespace, name, owner, keys.generate_turn_secret())
    if await kube.create_once(turn):
        logger.info("generated the TURN secret %s", turn["metadata"]["name"])


def region_state(region: Mapping[str, Any]) -> failover.RegionState:
    """What the failover decision needs from a ChatRegion object."""
    status = region.get("status") or {}
    health = status.get("health") or {}
    healthy = health.get("healthy")
    annotations = region["metadata"].get("annotations") or {}
    return failover.RegionState(
        healthy=healthy if isinstance(healthy, bool) else None,
        since=parse_timestamp(health.get("since")),
        failed_over=status.get("failedOver") is True,
        drain=(region.get("spec") or {}).get("drain") is True,
        failback_requested=failover.FAILBACK_ANNOTATION in annotations,
    )


def _published(data: Mapping[str, str] | None, logger: kopf.Logger) -> ShardMap | None:
    text = (data or {}).get(SHARD_MAP_KEY)
    if text is None:
        return None
    try:
        return ShardMap.from_json(text)
    except ShardMapInvalid as error:
        logger.warning("the published shard map is unreadable (%s); republishing", error)
        return None


async def sync_cluster(
    kube: Kube,
    cluster: Mapping[str, Any],
    spec: ChatClusterSpec,
    now: datetime,
    logger: kopf.Logger,
    *,
    observed: bool,
) -> ShardMap | None:
    """Decides failover, publishes the shard map when it changes, writes every status.
    Returns the map in force (None when none could be published yet).

    `observed`: this pass acts on a new spec (a change handler), so it records
    status.observedGeneration; the timer's passes leave that to the change handler.
    """
    meta = cluster["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    members = [
        region
        for region in await kube.list_objects(REGIONS, namespace)
        if (region.get("spec") or {}).get("cluster") == name
        and region["metadata"]["name"] in spec.regions
    ]
    states = {region["metadata"]["name"]: region_state(region) for region in members}
    verdicts = failover.decide(spec.failover, states, now)
    out = {region for region, verdict in verdicts.items() if verdict.out}
    successors = {
        region["metadata"]["name"]: (region.get("spec") or {}).get("failoverRegion")
        for region in members
    }
    found = await kube.config_map(namespace, shard_map_name(name))
    current = _published(found[0] if found else None, logger)
    recorded = ((cluster.get("status") or {}).get("shardMap") or {}).get("epoch")
    shard_map = placement.place(
        spec.regions,
        spec.shards,
        out=out,
        failover_regions=successors,
        current=current,
        min_epoch=recorded if isinstance(recorded, int) else 0,
    )
    if shard_map is not None and (found is None or shard_map != current):
        document = cluster_builders.shard_map_config_map(
            namespace, name, cluster_owner(cluster), shard_map
        )
        try:
            if found is None:
                await kube.create_config_map(document)
            else:
                document["metadata"]["resourceVersion"] = found[1]
                await kube.apply(document)
        except Exception as error:
            if is_conflict(error):
                raise PublishConflict("the shard map changed meanwhile") from error
            raise
        summary = ", ".join(f"{r}={n}" for r, n in shard_map.shards_per_region().items())
        logger.info("published shard map epoch %d (%s)", shard_map.epoch, summary)
        kopf.event(
            as_body(cluster),
            type="Normal",
            reason="ShardMapPublished",
            message=f"epoch {shard_map.epoch}: {summary}"
            + (f"; out: {', '.join(sorted(out))}" if out else ""),
        )
    homed = shard_map.shards_per_region() if shard_map is not None else {}
    for region in members:
        region_name = region["metadata"]["name"]
        await _report_region(kube, region, verdicts[region_name], homed.get(region_name, 0), now)
    await _report_cluster(kube, cluster, spec, verdicts, shard_map, now, observed=observed)
    return shard_map


async def _report_region(
    kube: Kube, region: Mapping[str, Any], verdict: failover.Verdict, homed: int, now: datetime
) -> None:
    meta = region["metadata"]
    if verdict.event is not None:
        kopf.event(
            as_body(region),
            type=verdict.event.type,
            reason=verdict.event.reason,
            message=verdict.event.message,
        )
    degraded = conditions.condition(
        conditions.DEGRADED,
        verdict.degraded,
        verdict.reason,
        verdict.message,
        generation=meta.get("generation"),
    )

    def mutate(current: Mapping[str, Any]) -> dict[str, Any] | None:
        status = current.get("status") or {}
        patch: dict[str, Any] = {}
        if status.get("failedOver") is not verdict.failed_over:
            patch["failedOver"] = verdict.failed_over
        if status.get("homedShards") != homed:
            patch["homedShards"] = homed
        merged = conditions.merge(status.get("conditions"), [degraded], now)
        if merged != status.get("conditions"):
            patch["conditions"] = merged
        return patch or None

    await kube.update_status(REGIONS, meta["namespace"], meta["name"], mutate)
    if verdict.clear_failback_request:
        await kube.patch_metadata(
            REGIONS,
            meta["namespace"],
            meta["name"],
            {"annotations": {failover.FAILBACK_ANNOTATION: None}},
        )


async def _report_cluster(
    kube: Kube,
    cluster: Mapping[str, Any],
    spec: ChatClusterSpec,
    verdicts: Mapping[str, failover.Verdict],
    shard_map: ShardMap | None,
    now: datetime,
    *,
    observed: bool,
) -> None:
    meta = cluster["metadata"]
    generation = meta.get("generation")
    troubled = {r: v for r, v in sorted(verdicts.items()) if v.degraded == "True"}
    if troubled:
        degraded = conditions.condition(
            conditions.DEGRADED,
            "True",
            "RegionsDegraded",
            "; ".join(f"{r}: {v.reason} ({v.message})" for r, v in troubled.items()),
            generation=generation,
        )
    else:
        degraded = conditions.condition(
            conditions.DEGRADED, "False", "AllRegionsServing", "", generation=generation
        )
    if shard_map is None:
        ready = conditions.condition(
            conditions.READY,
            "False",
            "NoRegionAvailable",
            "no region is available to home the shards; nothing published",
            generation=generation,
        )
    else:
        ready = conditions.condition(
            conditions.READY,
            "True",
            "ShardMapPublished",
            f"shard map epoch {shard_map.epoch} published in {shard_map_name(meta['name'])}",
            generation=generation,
        )
    progressing = conditions.condition(
        conditions.PROGRESSING, "False", "Reconciled", "", generation=generation
    )
    shard_status: dict[str, Any] | None = None
    if shard_map is not None:
        shard_status = {
            "epoch": shard_map.epoch,
            "configMap": shard_map_name(meta["name"]),
            "shardsPerRegion": {
                region: shard_map.shards_per_region().get(region, 0) for region in spec.regions
            },
        }

    def mutate(current: Mapping[str, Any]) -> dict[str, Any] | None:
        status = current.get("status") or {}
        patch: dict[str, Any] = {}
        merged = conditions.merge(status.get("conditions"), [ready, progressing, degraded], now)
        if merged != status.get("conditions"):
            patch["conditions"] = merged
        if observed and generation is not None and status.get("observedGeneration") != generation:
            patch["observedGeneration"] = generation
        previous = status.get("shardMap") or {}
        if shard_status is not None and previous != shard_status:
            # A merge patch merges maps: a region that left the cluster is removed by null.
            gone = set(previous.get("shardsPerRegion") or {}) - set(shard_status["shardsPerRegion"])
            patch["shardMap"] = {
                **shard_status,
                "shardsPerRegion": {
                    **dict.fromkeys(gone),
                    **shard_status["shardsPerRegion"],
                },
            }
        return patch or None

    await kube.update_status(CLUSTERS, meta["namespace"], meta["name"], mutate)
