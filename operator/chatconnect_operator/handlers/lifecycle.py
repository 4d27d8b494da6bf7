"""Opening and closing the operator's own API connection (kubernetes.aio), kept in
kopf's memo so every handler of this run shares it and a new run (a test's second
KopfRunner, on a new event loop) gets a fresh one."""

from __future__ import annotations

import os
from typing import Any

import kopf

from chatconnect_operator.kube import Kube


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's credentials, chosen like the operator's own client (Kube.connect): an
    explicit $KUBECONFIG first (read now, not when a library was imported), then the
    pod's service account, then the client library's defaults (~/.kube/config)."""
    if os.environ.get("KUBECONFIG"):
        return kopf.login_with_kubeconfig(**kwargs)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return kopf.login_with_service_account(**kwargs)
    return kopf.login_via_client(**kwargs)


@kopf.on.startup()
async def connect(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    memo["kube"] = await Kube.connect()
    logger.info("connected to the Kubernetes API")


@kopf.on.cleanup()
async def disconnect(memo: kopf.Memo, **_: Any) -> None:
    kube = memo.pop("kube", None)
    if isinstance(kube, Kube):
        await kube.close()
