"""The operator's entry point: kopf settings only; importing it registers the handlers.

    kopf run --standalone --all-namespaces --liveness=http://0.0.0.0:8080/healthz \
        -m chatconnect_operator.main
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from chatconnect_operator import handlers  # noqa: F401  (registers every handler)

PREFIX = "chatconnect.io"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Events for warnings and errors only: the operator posts its own domain events
    # (ShardMapPublished, FailedOver, GatewayScaleUp, ...) and kopf's "handler
    # succeeded" ones would drown them.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "chatconnect-operator"
    settings.posting.event_name_prefix = "chatconnect-operator-"
    # One operator per cluster (the chart runs one replica, Recreate): no peering objects.
    settings.peering.standalone = True
    # Bounded watches, so a half-dead connection is noticed and re-established.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 30
    # kopf keeps a finalizer on objects with timers and removes it once their timers
    # stopped; a timer caught mid-call (a probe, a Redis read) is awaited briefly, then
    # polled every second rather than every minute, so deleting a region is prompt.
    settings.background.instant_exit_timeout = 0.5
    settings.background.cancellation_polling = 1
    # Handler progress and the last-handled spec live in chatconnect.io/ annotations,
    # never in status (which the CRD schema owns and would prune).
    settings.persistence.finalizer = f"{PREFIX}/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
