"""What the operator reads back from and writes into statuses: autoscaler state, the
failover inputs, and the region model (or why a region cannot be built)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest
from chatconnect_operator import tomlfile
from chatconnect_operator.autoscaling import Decision, Direction
from chatconnect_operator.cluster_sync import region_state
from chatconnect_operator.reconcile import RegionBlocked, region_model
from chatconnect_operator.scaling import last_scales, next_state
from chatconnect_operator.specfields import SpecError

from chatconnect.runtime.load_reports import LoadFigure

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
T_UP = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)
T_DOWN = datetime(2030, 1, 1, 11, 30, tzinfo=UTC)
CLUSTER = {
    "metadata": {"name": "chat", "namespace": "prod", "uid": "c"},
    "spec": {
        "version": "1.0.0",
        "stores": [
            {
                "region": "eu",
                "scylla": {"contactPoints": ["s"], "localDatacenter": "eu"},
                "redis": {"url": "redis://r:6379/0"},
            }
        ],
    },
}


def region(name: str = "eu", status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "prod", "uid": "r", "annotations": {}},
        "spec": {"cluster": "chat", "health": {"endpoint": "gw:443"}, **spec},
        "status": status or {},
    }


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({}, (None, None)),
        (
            {
                "lastScaleUpTime": "2030-01-01T11:00:00Z",
                "lastScaleDownTime": "2030-01-01T11:30:00Z",
            },
            (T_UP, T_DOWN),
        ),
        ({"lastScaleUpTime": "2030-01-01T11:00:00Z", "lastScaleTime": "x"}, (T_UP, None)),
        # pruned per-direction times: the last change counts for both directions
        ({"lastScaleTime": "2030-01-01T11:30:00Z"}, (T_DOWN, T_DOWN)),
    ],
)
def test_last_scales(
    state: dict[str, str], expected: tuple[datetime | None, datetime | None]
) -> None:
    assert last_scales(state) == expected


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        ("none", {"replicas": 4, "load": 420}),
        (
            "up",
            {
                "replicas": 4,
                "load": 420,
                "lastScaleTime": "2030-01-01T12:00:00.000Z",
                "lastScaleUpTime": "2030-01-01T12:00:00.000Z",
            },
        ),
        (
            "down",
            {
                "replicas": 4,
                "load": 420,
                "lastScaleTime": "2030-01-01T12:00:00.000Z",
                "lastScaleDownTime": "2030-01-01T12:00:00.000Z",
            },
        ),
    ],
)
def test_next_state_moves_the_times_only_on_a_change(
    direction: Direction, expected: dict[str, Any]
) -> None:
    decision = Decision(4, direction, "X", "")
    assert next_state({}, decision, LoadFigure(total=420, reporters=3), NOW) == expected


def test_region_state_reads_health_latch_drain_and_failback_request() -> None:
    body = region(
        status={"health": {"healthy": False, "since": "2030-01-01T11:00:00Z"}, "failedOver": True},
        drain=True,
    )
    body["metadata"]["annotations"]["chatconnect.io/failback"] = "now"
    state = region_state(body)
    assert (state.healthy, state.since, state.failed_over, state.drain) == (False, T_UP, True, True)
    assert state.failback_requested is True
    fresh = region_state(region())
    assert (
        fresh.healthy,
        fresh.since,
        fresh.failed_over,
        fresh.drain,
        fresh.failback_requested,
    ) == (
        None,
        None,
        False,
        False,
        False,
    )


def test_region_model_takes_the_autoscaler_replicas_from_the_status() -> None:
    model = region_model(
        region(status={"gateway": {"replicas": 7}, "turn": {"replicas": 2}}), CLUSTER
    )
    assert (model.gateway_replicas, model.turn_replicas) == (7, 2)
    assert (model.namespace, model.cluster_name, model.name) == ("prod", "chat", "eu")
    assert model.owner.kind == "ChatRegion" and model.owner.uid == "r"
    assert model.stores.redis.url == "redis://r:6379/0"


@pytest.mark.parametrize(
    ("body", "cluster", "reason"),
    [
        (region(), None, "ClusterNotFound"),
        (region(), {**CLUSTER, "spec": {"stores": []}}, "ClusterInvalid"),
        (region("us"), CLUSTER, "NoStores"),
    ],
)
def test_a_region_waits_for_its_cluster(
    body: dict[str, Any], cluster: dict[str, Any] | None, reason: str
) -> None:
    with pytest.raises(RegionBlocked) as blocked:
        region_model(body, cluster)
    assert blocked.value.reason == reason


def test_a_bad_region_spec_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"^spec.health.endpoint"):
        region_model(region(health={"endpoint": "nope"}), CLUSTER)


def test_toml_values_round_trip() -> None:
    sections = {
        "server": {"listen": "0.0.0.0:7600", "port": 9042, "ratio": 0.25, "on": True, "off": False},
        "odd keys": {"a.b": 'quote " and \\ and \n', "ünï": "☃"},
    }
    text = tomlfile.render(sections, header="line one\nline two")
    assert text.startswith("# line one\n# line two\n")
    assert tomllib.loads(text) == sections


def test_toml_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="no TOML form"):
        tomlfile.render({"s": {"x": float("nan")}})
