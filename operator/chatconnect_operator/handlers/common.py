"""What every handler shares: the operator settings and the API connection."""

from __future__ import annotations

from datetime import UTC, datetime

import kopf

from chatconnect_operator import settings
from chatconnect_operator.kube import Kube

SETTINGS = settings.load()
"""Read at import: kopf needs the timer intervals when the handlers register."""


def kube_of(memo: kopf.Memo) -> Kube:
    """The connection opened at startup (handlers.lifecycle)."""
    kube = memo.get("kube")
    if not isinstance(kube, Kube):
        raise kopf.TemporaryError("the Kubernetes client is not connected yet", delay=1)
    return kube


def utcnow() -> datetime:
    return datetime.now(UTC)
