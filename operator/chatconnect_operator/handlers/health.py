"""The ChatRegion health timer: probes `spec.health.endpoint` every periodSeconds and
records status.health (with `since`, the start of the current verdict)."""

from __future__ import annotations

from typing import Any

import kopf

from chatconnect_operator import GROUP, REGIONS, VERSION, health
from chatconnect_operator.handlers.common import SETTINGS, kube_of, utcnow
from chatconnect_operator.spec import parse_region
from chatconnect_operator.specfields import SpecError

# Read once: a CA bundle is a deployment setting, changed by restarting the operator.
ROOTS = SETTINGS.health_ca_file.read_bytes() if SETTINGS.health_ca_file else None


@kopf.timer(GROUP, VERSION, REGIONS, interval=SETTINGS.health_interval)
async def probe_health(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    logger: kopf.Logger,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    try:
        spec = parse_region(body.get("spec"), name=meta["name"])
    except SpecError:
        return  # reported by region_changed
    previous = status.get("health")
    now = utcnow()
    if not health.due(previous, spec.health.period_seconds, SETTINGS.health_interval / 2, now):
        return
    result = await health.probe(spec.health, root_certificates=ROOTS)
    recorded = health.next_status(previous, result, now)
    await kube_of(memo).patch_status(REGIONS, meta["namespace"], meta["name"], {"health": recorded})
    if (previous or {}).get("healthy") is not result.healthy:
        logger.info("region %s healthy=%s: %s", meta["name"], result.healthy, result.message)
        kopf.event(
            body,
            type="Normal" if result.healthy else "Warning",
            reason="Healthy" if result.healthy else "Unhealthy",
            message=f"{spec.health.endpoint}: {result.message}",
        )
