"""The ChatRegion autoscaling timer (see `scaling` for the pass itself)."""

from __future__ import annotations

import time
from typing import Any

import kopf

from chatconnect_operator import GROUP, REGIONS, VERSION
from chatconnect_operator.handlers.common import SETTINGS, kube_of, utcnow
from chatconnect_operator.reconcile import RegionBlocked, cluster_of, region_model, report_blocked
from chatconnect_operator.scaling import autoscale_region
from chatconnect_operator.specfields import SpecError


@kopf.timer(GROUP, VERSION, REGIONS, interval=SETTINGS.autoscale_interval)
async def autoscale(meta: kopf.Meta, logger: kopf.Logger, memo: kopf.Memo, **_: Any) -> None:
    kube = kube_of(memo)
    namespace = meta["namespace"]
    # Fresh, not the timer's cached body: the replicas and scale times must be the latest.
    region = await kube.get(REGIONS, namespace, meta["name"])
    if region is None:
        return
    try:
        model = region_model(region, await cluster_of(kube, region))
    except SpecError:
        return  # reported by region_changed
    except RegionBlocked as blocked:
        # Its cluster went away or broke after the last change of the region itself:
        # nothing else would tell the region's readers.
        await report_blocked(kube, region, blocked)
        return
    secret = model.stores.redis.password_secret
    password = await kube.secret_value(namespace, secret, "password") if secret else None
    await autoscale_region(
        kube,
        region,
        model,
        password=password,
        now=utcnow(),
        now_ms=int(time.time() * 1000),
        max_age_ms=SETTINGS.load_max_age_ms,
        logger=logger,
    )
