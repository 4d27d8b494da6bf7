"""The operator end to end: kopf running in-process against the real API server of
`tools/kubeenv`, observed the way a user would, with kubectl.

Every test gets a fresh namespace and a fresh operator run. Health endpoints are real
gRPC health servers in the test's event loop; load figures are written into the test
Redis with the services' own `report_load`, on database indexes of their own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from chatconnect_operator.conditions import parse_timestamp
from chatconnect_operator.placement import base_homes

from chatconnect.runtime.auth import load_or_create_signing_key
from chatconnect.runtime.load_reports import (
    GATEWAY,
    TURN,
    TURN_STATS_DB,
    load_key,
    report_load,
)
from chatconnect.runtime.settings import load_settings
from chatconnect.sharding.shardmap import ShardMap
from tests.chatconnect_operator.conftest import Cluster
from tests.chatconnect_operator.healthservers import NOT_SERVING, SERVING, HealthServer
from tests.polling import eventually
from tests.servers import redis_url

COMPONENTS = ("gateway", "router", "users", "devices", "keys", "turn")
KINDS = ("deployment", "service", "poddisruptionbudget")
LABELS = {
    "app.kubernetes.io/name": "chatconnect",
    "app.kubernetes.io/instance": "chat",
    "app.kubernetes.io/managed-by": "chatconnect-operator",
}
SHARDS = 64


def redis_db(index: int) -> str:
    """The test Redis on a database of the operator tests' own."""
    return redis_url().rsplit("/", 1)[0] + f"/{index}"


def chat_cluster(regions: dict[str, int], **spec: Any) -> dict[str, Any]:
    """A ChatCluster `chat` with a Redis database per region."""
    return {
        "apiVersion": "chatconnect.io/v1alpha1",
        "kind": "ChatCluster",
        "metadata": {"name": "chat"},
        "spec": {
            "version": "1.4.2",
            "shards": SHARDS,
            "stores": [
                {
                    "region": region,
                    "scylla": {"contactPoints": [f"scylla.{region}"], "localDatacenter": region},
                    "redis": {"url": redis_db(db)},
                }
                for region, db in regions.items()
            ],
            **spec,
        },
    }


def chat_region(name: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "chatconnect.io/v1alpha1",
        "kind": "ChatRegion",
        "metadata": {"name": name},
        "spec": {
            "cluster": "chat",
            "health": {"endpoint": endpoint, "tls": False, "periodSeconds": 1, "timeoutSeconds": 1},
            **spec,
        },
    }


@pytest.fixture
async def servers() -> AsyncIterator[dict[str, HealthServer]]:
    """A SERVING health server per region."""
    running = {region: await HealthServer().start() for region in ("eu", "us", "ap")}
    yield running
    for server in running.values():
        with contextlib.suppress(Exception):
            await server.stop()


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_]
    assert found, f"no {type_} condition in {obj.get('status')}"
    return found[0]


async def shard_map(cluster: Cluster) -> ShardMap | None:
    found = await cluster.maybe("configmap", "chat-shard-map")
    return ShardMap.from_json(found["data"]["shard-map.json"]) if found else None


async def ready(cluster: Cluster, kind: str, name: str) -> dict[str, Any]:
    """The object once its Ready condition is True for its current generation."""

    async def check() -> dict[str, Any] | None:
        obj = await cluster.get(kind, name)
        status = obj.get("status", {})
        ok = (
            condition(obj, "Ready")["status"] == "True"
            and status.get("observedGeneration") == obj["metadata"]["generation"]
        )
        return obj if ok else None

    return await eventually(check, f"{kind}/{name} Ready")


async def create(cluster: Cluster, servers: dict[str, HealthServer], **cluster_spec: Any) -> None:
    """ChatCluster chat with regions eu (failing over to us) and us, both Ready."""
    await cluster.apply(chat_cluster({"eu": 7, "us": 8}, **cluster_spec))
    await cluster.apply(chat_region("eu", servers["eu"].endpoint, failoverRegion="us"))
    await cluster.apply(chat_region("us", servers["us"].endpoint))
    for name in ("eu", "us"):
        await ready(cluster, "chatregion", name)
    await ready(cluster, "chatcluster", "chat")


async def test_a_cluster_and_two_regions_get_every_object(
    cluster: Cluster, servers: dict[str, HealthServer], tmp_path: Path
) -> None:
    await create(cluster, servers)
    regions = {name: await cluster.get("chatregion", name) for name in ("eu", "us")}
    for region, body in regions.items():
        owner = {
            "apiVersion": "chatconnect.io/v1alpha1",
            "kind": "ChatRegion",
            "name": region,
            "uid": body["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        for component in COMPONENTS:
            for kind in KINDS:
                obj = await cluster.get(kind, f"chat-{region}-{component}")
                assert obj["metadata"]["labels"] == {
                    **LABELS,
                    "app.kubernetes.io/component": component,
                    "chatconnect.io/region": region,
                }, (kind, component)
                assert obj["metadata"]["ownerReferences"] == [owner]
            deployment = await cluster.get("deployment", f"chat-{region}-{component}")
            expected = 1 if component == "turn" else 2
            assert deployment["spec"]["replicas"] == expected, component
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert security["runAsNonRoot"] is True
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}
            if component != "turn":
                assert container["image"] == "ghcr.io/chatconnect/chatconnect:1.4.2"
                assert container["args"][:2] == ["serve", component]
                assert security["runAsUser"] == 10001
                assert container["readinessProbe"]["grpc"]["port"] == 7600
        # the region's settings file is one ChatConnect itself loads
        config = await cluster.get("configmap", f"chat-{region}-config")
        assert config["metadata"]["ownerReferences"] == [owner]
        path = tmp_path / f"{region}.toml"
        path.write_text(config["data"]["chatconnect.toml"])
        settings = load_settings(path, env={})
        assert settings.sharding.region == region
        assert settings.server.redis_url == redis_db(7 if region == "eu" else 8)
        assert settings.scylla.local_dc == region
        assert condition(body, "Ready")["reason"] == "Reconciled"

    chat = await cluster.get("chatcluster", "chat")
    owner = {"kind": "ChatCluster", "name": "chat", "uid": chat["metadata"]["uid"]}
    published = await cluster.get("configmap", "chat-shard-map")
    assert published["metadata"]["ownerReferences"][0].items() >= owner.items()
    mapped = ShardMap.from_json(published["data"]["shard-map.json"])
    assert mapped.epoch == 1
    assert mapped.homes == base_homes(("eu", "us"), SHARDS)
    assert chat["status"]["shardMap"] == {
        "epoch": 1,
        "configMap": "chat-shard-map",
        "shardsPerRegion": mapped.shards_per_region(),
    }
    assert condition(chat, "Degraded")["status"] == "False"
    key = await cluster.get("secret", "chat-token-signing-key")
    assert key["metadata"]["ownerReferences"][0].items() >= owner.items()
    pem = tmp_path / "key.pem"
    pem.write_bytes(base64.b64decode(key["data"]["token-signing-key.pem"]))
    load_or_create_signing_key(pem)  # an Ed25519 private key, or SystemExit

    async def homed() -> bool:
        for region in ("eu", "us"):
            status = (await cluster.get("chatregion", region))["status"]
            assert status["homedShards"] == mapped.shards_per_region()[region]
            assert status["health"]["healthy"] is True
            assert status["failedOver"] is False
        return True

    await eventually(homed, "regions report their health and homed shards")
    table = await cluster.kubectl("get", "chatcluster", "chat")
    assert table.split("\n")[1].split()[:5] == ["chat", "1.4.2", str(SHARDS), "1", "True"]


async def test_spec_changes_reach_the_objects(
    cluster: Cluster, servers: dict[str, HealthServer]
) -> None:
    await create(cluster, servers)
    key_before = (await cluster.get("secret", "chat-token-signing-key"))["data"]
    await cluster.patch(
        "chatregion",
        "eu",
        {"spec": {"services": {"router": {"replicas": 5}}, "turn": {"enabled": False}}},
    )

    async def router_scaled() -> bool:
        deployment = await cluster.get("deployment", "chat-eu-router")
        assert deployment["spec"]["replicas"] == 5
        assert await cluster.maybe("deployment", "chat-eu-turn") is None
        assert await cluster.maybe("service", "chat-eu-turn") is None
        return True

    await eventually(router_scaled, "router scaled to 5 and TURN removed")
    region = await ready(cluster, "chatregion", "eu")
    assert region["status"]["observedGeneration"] == 2

    await cluster.patch("chatcluster", "chat", {"spec": {"version": "1.5.0"}})

    async def upgraded() -> bool:
        for region in ("eu", "us"):
            for component in ("gateway", "router", "users", "devices", "keys"):
                deployment = await cluster.get("deployment", f"chat-{region}-{component}")
                image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
                assert image == "ghcr.io/chatconnect/chatconnect:1.5.0", (region, component)
        return True

    await eventually(upgraded, "every ChatConnect Deployment runs 1.5.0")
    chat = await ready(cluster, "chatcluster", "chat")
    assert chat["status"]["observedGeneration"] == 2
    # the signing key is created once, never regenerated
    assert (await cluster.get("secret", "chat-token-signing-key"))["data"] == key_before


async def test_gateways_and_relays_follow_the_load(
    cluster: Cluster, servers: dict[str, HealthServer]
) -> None:
    client = aioredis.from_url(redis_db(7))
    await client.delete(load_key("cc", GATEWAY))
    # coturn's statsdb: DB TURN_STATS_DB of the region's Redis server.
    stats = aioredis.from_url(redis_db(TURN_STATS_DB))
    await stats.flushdb()
    reported: dict[str, dict[str, int]] = {GATEWAY: {}}
    reporting = asyncio.Lock()  # no report lands after the test withdrew them all

    async def heartbeat() -> None:
        """What gateways do: report their figure on every route heartbeat."""
        while True:
            async with reporting:
                for component, figures in reported.items():
                    for instance, figure in figures.items():
                        await report_load(
                            client,
                            component=component,
                            instance_id=instance,
                            figure=figure,
                            now_ms=int(time.time() * 1000),
                        )
            await asyncio.sleep(0.5)

    reporter = asyncio.create_task(heartbeat())
    try:
        await cluster.apply(chat_cluster({"eu": 7}))
        gateway = {
            "minReplicas": 2,
            "maxReplicas": 6,
            "targetConnectionsPerPod": 100,
            "maxStep": 2,
            "scaleUpCooldownSeconds": 2,
            "scaleDownCooldownSeconds": 2,
        }
        turn = {
            "minReplicas": 1,
            "maxReplicas": 3,
            "targetAllocationsPerPod": 10,
            "scaleUpCooldownSeconds": 0,
        }
        await cluster.apply(chat_region("eu", servers["eu"].endpoint, gateway=gateway, turn=turn))
        await ready(cluster, "chatregion", "eu")

        async def replicas(component: str) -> tuple[int, int, dict[str, Any]]:
            """(Deployment replicas, status replicas, status) of a component."""
            deployment = await cluster.get("deployment", f"chat-eu-{component}")
            status = (await cluster.get("chatregion", "eu"))["status"].get(component, {})
            return deployment["spec"]["replicas"], status.get("replicas"), status

        async def at(component: str, count: int) -> dict[str, Any] | None:
            deployed, recorded, status = await replicas(component)
            return status if deployed == recorded == count else None

        await eventually(lambda: at(GATEWAY, 2), "2 gateways (the minimum) without load")
        # 1,000 connections at 100 per pod want 10 pods: at most 2 more per decision,
        # 2 s apart, never more than 6
        reported[GATEWAY] = {"gw-a": 600, "gw-b": 400}
        four = await eventually(lambda: at(GATEWAY, 4), "a first step to 4 gateways")
        assert four["load"] == 1000
        six = await eventually(lambda: at(GATEWAY, 6), "a second step to 6 gateways")
        up_four, up_six = (
            parse_timestamp(four["lastScaleTime"]),
            parse_timestamp(six["lastScaleTime"]),
        )
        assert up_four is not None and up_six is not None
        assert (up_six - up_four).total_seconds() >= 2, "the scale-up cooldown was not respected"
        events = await cluster.events("eu", "GatewayScaleUp")
        assert len(events) >= 2

        # no fresh report at all: hold, never scale down on missing data
        async with reporting:
            reported[GATEWAY] = {}
            await client.delete(load_key("cc", GATEWAY))
        await asyncio.sleep(1.5)  # three autoscaling ticks with nothing to read
        assert await at(GATEWAY, 6), "scaled without any load report"

        # relays on allocations (as coturn records them in its statsdb), in their own bounds
        await stats.mset(
            {
                f"turn/realm/chat/user/u{n}/allocation/{n:018d}/status": "new lifetime=600"
                for n in range(25)
            }
        )
        await eventually(lambda: at(TURN, 3), "3 TURN relays for 25 allocations")

        # light load: down by at most 2 per decision, to the minimum
        reported[GATEWAY] = {"gw-a": 50, "gw-b": 50}
        await eventually(lambda: at(GATEWAY, 4), "a step down to 4 gateways")
        await eventually(lambda: at(GATEWAY, 2), "a step down to 2 gateways")
        assert await cluster.events("eu", "GatewayScaleDown")
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        await client.delete(load_key("cc", GATEWAY))
        await client.aclose()
        await stats.flushdb()
        await stats.aclose()


async def test_an_unhealthy_region_fails_over_and_back_automatically(
    cluster: Cluster, servers: dict[str, HealthServer]
) -> None:
    failover = {
        "mode": "Automatic",
        "detectionWindowSeconds": 10,
        "failback": "Automatic",
        "failbackStableSeconds": 2,
    }
    await create(cluster, servers, failover=failover)
    first = await shard_map(cluster)
    assert first is not None and first.epoch == 1
    loop = asyncio.get_running_loop()
    await servers["eu"].set(NOT_SERVING)
    broke = loop.time()

    async def failed_over() -> ShardMap | None:
        current = await shard_map(cluster)
        return current if current is not None and current.epoch == 2 else None

    moved = await eventually(failed_over, "eu failed over", timeout=25)
    assert loop.time() - broke >= 9.5, "failed over before the detection window"
    # every shard of eu went to its failoverRegion, the others stayed
    assert moved.homes == tuple("us" for _ in first.homes)
    region = await cluster.get("chatregion", "eu")
    assert region["status"]["failedOver"] is True
    assert region["status"]["homedShards"] == 0
    assert region["status"]["health"]["healthy"] is False
    degraded = condition(region, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "FailedOver")
    (event,) = await cluster.events("eu", "FailedOver")
    assert event["type"] == "Warning"
    chat = await cluster.get("chatcluster", "chat")
    assert chat["status"]["shardMap"]["epoch"] == 2
    assert chat["status"]["shardMap"]["shardsPerRegion"] == {"eu": 0, "us": SHARDS}
    assert condition(chat, "Degraded")["status"] == "True"
    assert any("epoch 2" in e["message"] for e in await cluster.events("chat", "ShardMapPublished"))

    await servers["eu"].set(SERVING)

    async def failed_back() -> ShardMap | None:
        current = await shard_map(cluster)
        return current if current is not None and current.epoch == 3 else None

    back = await eventually(failed_back, "eu failed back")
    assert back.homes == first.homes
    assert await cluster.events("eu", "FailedBack")

    async def recovered() -> bool:
        region = await cluster.get("chatregion", "eu")
        assert region["status"]["failedOver"] is False
        assert condition(region, "Degraded")["status"] == "False"
        assert condition(await cluster.get("chatcluster", "chat"), "Degraded")["status"] == "False"
        return True

    await eventually(recovered, "eu reported healthy again")


async def test_manual_failback_waits_for_a_person_and_drain_moves_shards_at_once(
    cluster: Cluster, servers: dict[str, HealthServer]
) -> None:
    failover = {"detectionWindowSeconds": 10, "failback": "Manual"}
    await cluster.apply(chat_cluster({"eu": 7, "us": 8, "ap": 9}, failover=failover))
    for name in ("eu", "us", "ap"):
        await cluster.apply(chat_region(name, servers[name].endpoint))
    for name in ("eu", "us", "ap"):
        await ready(cluster, "chatregion", name)
    base = base_homes(("ap", "eu", "us"), SHARDS)
    await eventually(lambda: _epoch_is(cluster, 1), "the first shard map")

    port = servers["eu"].port
    await servers["eu"].stop()  # the region's gateways are gone altogether
    moved = await eventually(lambda: _epoch_is(cluster, 2), "eu failed over", timeout=25)
    orphans = [shard for shard, home in enumerate(base) if home == "eu"]
    # without a failoverRegion, eu's shards spread over the others
    assert {moved.homes[shard] for shard in orphans} == {"us", "ap"}
    assert all(moved.homes[s] == base[s] for s in range(SHARDS) if s not in orphans)

    servers["eu"] = await HealthServer(port=port).start()

    async def healthy() -> bool:
        return (await cluster.get("chatregion", "eu"))["status"]["health"]["healthy"] is True

    await eventually(healthy, "eu healthy again")
    await asyncio.sleep(1.5)  # healthy for a while: with Manual failback, nothing moves
    still = await shard_map(cluster)
    assert still is not None and still.epoch == 2
    region = await cluster.get("chatregion", "eu")
    assert region["status"]["failedOver"] is True
    assert "chatconnect.io/failback" in condition(region, "Degraded")["message"]

    await cluster.kubectl("annotate", "chatregion", "eu", "chatconnect.io/failback=now")
    back = await eventually(lambda: _epoch_is(cluster, 3), "eu failed back on request")
    assert back.homes == base
    assert await cluster.events("eu", "FailedBack")

    async def request_removed() -> bool:
        region = await cluster.get("chatregion", "eu")
        return "chatconnect.io/failback" not in region["metadata"].get("annotations", {})

    await eventually(request_removed, "the failback request removed")

    # drain: out at once, whatever the mode and the window
    loop = asyncio.get_running_loop()
    drained_at = loop.time()
    await cluster.patch("chatregion", "us", {"spec": {"drain": True}})
    drained = await eventually(lambda: _epoch_is(cluster, 4), "us drained", timeout=8)
    assert loop.time() - drained_at < 8
    assert "us" not in drained.homes

    async def reported_drained() -> bool:
        # The status is written after the shard map, in the same reconcile; read it once
        # that write has landed.
        region = await cluster.get("chatregion", "us")
        return bool(condition(region, "Degraded")["reason"] == "Drained")

    await eventually(reported_drained, "us reported Drained", timeout=5)
    await cluster.patch("chatregion", "us", {"spec": {"drain": False}})
    undrained = await eventually(lambda: _epoch_is(cluster, 5), "us back after the drain")
    assert undrained.homes == base


async def _epoch_is(cluster: Cluster, epoch: int) -> ShardMap | None:
    current = await shard_map(cluster)
    return current if current is not None and current.epoch == epoch else None


async def test_deleting_a_region_or_the_cluster_deletes_what_they_own(
    cluster: Cluster, servers: dict[str, HealthServer]
) -> None:
    await create(cluster, servers)

    async def owned(region: str) -> list[str]:
        listed = await cluster.get(
            "deployments,services,poddisruptionbudgets,configmaps",
            "-l",
            f"chatconnect.io/region={region}",
        )
        return [f"{o['kind']}/{o['metadata']['name']}" for o in listed["items"]]

    assert len(await owned("eu")) == 3 * len(COMPONENTS) + 1
    await cluster.kubectl("delete", "chatregion", "eu", "--wait=false")

    async def eu_gone() -> bool:
        left = await owned("eu")
        assert not left, left
        return True

    await eventually(eu_gone, "every object of eu garbage-collected", timeout=30)
    assert len(await owned("us")) == 3 * len(COMPONENTS) + 1

    await cluster.kubectl("delete", "chatcluster", "chat", "--wait=false")

    async def cluster_objects_gone() -> bool:
        assert await cluster.maybe("configmap", "chat-shard-map") is None
        assert await cluster.maybe("secret", "chat-token-signing-key") is None
        assert await cluster.maybe("secret", "chat-turn-secret") is None
        return True

    await eventually(cluster_objects_gone, "the cluster's objects garbage-collected", timeout=30)

    # us is still there, and says what it waits for, untouched
    async def waiting() -> bool:
        ready = condition(await cluster.get("chatregion", "us"), "Ready")
        return ready["status"] == "False" and ready["reason"] == "ClusterNotFound"

    await eventually(waiting, "us reports its missing ChatCluster")
