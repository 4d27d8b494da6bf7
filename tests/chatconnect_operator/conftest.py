"""Fixtures of the operator's end-to-end tests: the CRDs from the Helm chart, the operator
running in-process (kopf.testing.KopfRunner) against the real API server of
`tools/kubeenv`, and helpers to poll what a user would see with kubectl.

The control plane has no kubelet: Deployments are stored and scaled, pods never run. The
region health endpoints are real gRPC health servers started by the tests.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner

from tests.kube import Kube

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "chatconnect"
CRD_TEMPLATES = ("templates/crds/chatclusters.yaml", "templates/crds/chatregions.yaml")
TEST_MANAGER = "chatconnect-operator-tests"
RBAC = ROOT / "operator" / "chatconnect_operator" / "RBAC.md"
CLUSTER_SCOPED = {"customresourcedefinitions", "namespaces"}
SERVICE_ACCOUNT = "chatconnect-operator"

# Short intervals so every scenario takes seconds (read when the operator is imported).
OPERATOR_ENV = {
    "CHATCONNECT_OPERATOR_HEALTH_INTERVAL": "0.5",
    "CHATCONNECT_OPERATOR_AUTOSCALE_INTERVAL": "0.5",
    "CHATCONNECT_OPERATOR_FAILOVER_INTERVAL": "0.5",
    "CHATCONNECT_OPERATOR_LOAD_HEARTBEAT_SECONDS": "5",
    "CHATCONNECT_OPERATOR_RETRY_DELAY": "1",
}



@pytest.fixture(scope="session")
def crds(kube: Kube) -> None:
    """The ChatCluster and ChatRegion CRDs, rendered from the chart and applied.

    Only name and spec are applied (server-side, under a field manager of these tests),
    so a Helm release that installed the same CRDs keeps its labels and annotations.
    """
    missing = [t for t in CRD_TEMPLATES if not (CHART / t).exists()]
    if missing:
        pytest.fail(
            f"the Helm chart has no {', '.join(missing)} under {CHART}: the CRDs come from "
            "the chart (charts/chatconnect/templates/crds/); write them there first"
        )
    for template in CRD_TEMPLATES:
        rendered = kube.helm_run("template", "crds", str(CHART), "--show-only", template).stdout
        crd = yaml.safe_load(rendered)
        minimal = {
            "apiVersion": crd["apiVersion"],
            "kind": crd["kind"],
            "metadata": {"name": crd["metadata"]["name"]},
            "spec": crd["spec"],
        }
        kube.kubectl_run(
            "apply",
            "--server-side",
            "--force-conflicts",
            f"--field-manager={TEST_MANAGER}",
            "-f",
            "-",
            stdin=json.dumps(minimal),
        )
        kube.kubectl_run(
            "wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}", "--timeout=60s"
        )


def rbac_rules() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rules of the operator's ClusterRole in RBAC.md: (namespaced, cluster-scoped)."""
    block = RBAC.read_text().split("```yaml", 1)[1].split("```", 1)[0]
    rules: list[dict[str, Any]] = yaml.safe_load(block)["rules"]
    cluster = [rule for rule in rules if set(rule["resources"]) & CLUSTER_SCOPED]
    return [rule for rule in rules if rule not in cluster], cluster


@pytest.fixture
def operator_kubeconfig(kube: Kube, namespace: str, tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig for a ServiceAccount holding only RBAC.md's rules, so the tests fail
    when the operator needs a permission the chart would not grant.

    The namespaced rules are bound in the test's namespace; the cluster-scoped ones with
    a ClusterRoleBinding of the test's own, plus `namespaces` list/watch, which kopf
    needs in `--namespace` mode only (RBAC.md says so).
    """
    namespaced, cluster = rbac_rules()
    cluster = [
        *cluster,
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    ]
    rbac = "rbac.authorization.k8s.io/v1"
    cluster_name = f"{SERVICE_ACCOUNT}-{namespace}"
    subject = {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}

    def binding(kind: str, name: str, role_kind: str) -> dict[str, Any]:
        return {
            "apiVersion": rbac,
            "kind": kind,
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
            "subjects": [subject],
        }

    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT}}
    kube.apply(account, "-n", namespace)
    role = {"apiVersion": rbac, "kind": "Role", "metadata": {"name": SERVICE_ACCOUNT}}
    kube.apply({**role, "rules": namespaced}, "-n", namespace)
    kube.apply(binding("RoleBinding", SERVICE_ACCOUNT, "Role"), "-n", namespace)
    kube.apply(
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": cluster_name},
            "rules": cluster,
        }
    )
    kube.apply(binding("ClusterRoleBinding", cluster_name, "ClusterRole"))
    try:
        token = kube.kubectl_run(
            "create", "token", SERVICE_ACCOUNT, "-n", namespace, "--duration=1h"
        ).stdout.strip()
        config = json.loads(kube.kubectl_run("config", "view", "--raw", "-o", "json").stdout)
        config["users"] = [{"name": SERVICE_ACCOUNT, "user": {"token": token}}]
        for context in config["contexts"]:
            context["context"]["user"] = SERVICE_ACCOUNT
        path = tmp_path / "operator.kubeconfig"
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        yield path
    finally:
        kube.kubectl_run(
            "delete",
            f"clusterrolebinding/{cluster_name}",
            f"clusterrole/{cluster_name}",
            "--ignore-not-found",
            check=False,
        )


def _check_settings_not_stale() -> None:
    """The operator reads its settings once, at import: an import by another test with
    other values would make every interval here wrong."""
    common = sys.modules.get("chatconnect_operator.handlers.common")
    if common is None:
        return
    settings = common.SETTINGS
    if settings.failover_interval != float(OPERATOR_ENV["CHATCONNECT_OPERATOR_FAILOVER_INTERVAL"]):
        pytest.fail("chatconnect_operator.handlers was imported with other settings")


@pytest.fixture
def operator(
    kube: Kube, namespace: str, crds: None, operator_kubeconfig: Path
) -> Iterator[KopfRunner]:
    """The operator watching `namespace` as its least-privilege ServiceAccount, stopped
    after the test.

    Every ChatCluster and ChatRegion left in the namespace is deleted while the operator
    still runs: kopf puts a finalizer on objects with timers, and only a running operator
    removes it (otherwise the namespace could never be deleted).
    """
    _check_settings_not_stale()
    args = ["run", "--standalone", "--namespace", namespace, "-m", "chatconnect_operator.main"]
    env = {"KUBECONFIG": str(operator_kubeconfig), **OPERATOR_ENV}
    with KopfRunner(args, env=env, timeout=60) as runner:
        yield runner
        kube.kubectl_run(
            "delete",
            "chatregions,chatclusters",
            "--all",
            "-n",
            namespace,
            "--timeout=30s",
            check=False,
        )
    leftovers = kube.get("chatregions,chatclusters", "-n", namespace)["items"]
    for item in leftovers:  # the operator failed to clean up: unblock the namespace anyway
        kube.kubectl_run(
            "patch",
            f"{item['kind'].lower()}/{item['metadata']['name']}",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
            check=False,
        )
    assert not leftovers, f"left behind after the test: {leftovers}"


class Cluster:
    """kubectl in one namespace, off the event loop (the tests' gRPC health servers run
    on it and must keep answering while kubectl works)."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    async def get(self, *args: str) -> Any:
        return await asyncio.to_thread(self.kube.get, *args, "-n", self.namespace)

    async def maybe(self, kind: str, name: str) -> Any:
        """The object, or None when it does not exist."""
        proc = await asyncio.to_thread(
            self.kube.kubectl_run,
            "get",
            kind,
            name,
            "-n",
            self.namespace,
            "-o",
            "json",
            "--ignore-not-found",
        )
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    async def apply(self, manifest: dict[str, Any]) -> None:
        await asyncio.to_thread(self.kube.apply, manifest, "-n", self.namespace)

    async def patch(self, kind: str, name: str, patch: dict[str, Any]) -> None:
        await asyncio.to_thread(
            self.kube.kubectl_run,
            "patch",
            kind,
            name,
            "-n",
            self.namespace,
            "--type=merge",
            "-p",
            json.dumps(patch),
        )

    async def kubectl(self, *args: str) -> str:
        proc = await asyncio.to_thread(self.kube.kubectl_run, *args, "-n", self.namespace)
        return proc.stdout

    async def events(self, name: str, reason: str) -> list[dict[str, Any]]:
        listed = await self.get(
            "events", "--field-selector", f"involvedObject.name={name},reason={reason}"
        )
        return list(listed["items"])


@pytest.fixture
def cluster(kube: Kube, namespace: str, operator: KopfRunner) -> Cluster:
    """kubectl in the test's namespace, with the operator running."""
    return Cluster(kube, namespace)
