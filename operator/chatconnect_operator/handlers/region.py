"""ChatRegion handlers: reconcile the region's objects on every change."""

from __future__ import annotations

from typing import Any

import kopf

from chatconnect_operator import GROUP, REGIONS, VERSION
from chatconnect_operator.handlers.common import SETTINGS, kube_of
from chatconnect_operator.reconcile import (
    RegionBlocked,
    as_kopf_error,
    cluster_of,
    reconcile_region,
)
from chatconnect_operator.specfields import SpecError


@kopf.on.create(GROUP, VERSION, REGIONS)
@kopf.on.update(GROUP, VERSION, REGIONS)
@kopf.on.resume(GROUP, VERSION, REGIONS)
async def region_changed(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    kube = kube_of(memo)
    # Fresh: the gateway replicas in the status must be the autoscaler's latest.
    region = await kube.get(REGIONS, meta["namespace"], meta["name"])
    if region is None:
        return
    try:
        await reconcile_region(kube, region, await cluster_of(kube, region))
    except (SpecError, RegionBlocked) as error:
        raise as_kopf_error(error, SETTINGS.retry_delay) from None
