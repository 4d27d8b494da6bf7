"""The Helm chart charts/chatconnect and its CRDs, against the real API server of kubeenv.

What an operator of ChatConnect would see: `helm lint --strict` passes; values that break
values.schema.json are refused with the schema's message before anything is rendered;
everything the chart renders is accepted by a real kube-apiserver (dry run); a real
install creates the operator with a restricted security context and exactly its
least-privilege RBAC, an upgrade creates the ChatCluster and ChatRegions with the CRD
defaults filled in by the server, and an uninstall removes all of it but the CRDs. The
CRDs reject invalid objects naming the field, keep `spec.shards` immutable and print the
columns of docs/kubernetes.md.

The CRDs are cluster-scoped and shared by every test (and by the operator's tests): the
`crds` fixture applies the rendered CRDs server-side with --force-conflicts, so they may
already exist. A custom resource can only be sent once its CRD is established — kubectl
and Helm both resolve every kind before they send anything — which is why the dry runs
and installs here come after that fixture, and why the chart renders custom resources
only when asked (see the chart README, "Installing").
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kube import Kube

ROOT = Path(__file__).resolve().parent.parent.parent
CHART = str(ROOT / "charts" / "chatconnect")
MULTI_REGION = str(Path(__file__).resolve().parent / "values-multi-region.yaml")
GROUP = "chatconnect.io"
API = f"{GROUP}/v1alpha1"
CRDS = (f"chatclusters.{GROUP}", f"chatregions.{GROUP}")
CRD_TEMPLATES = ("templates/crds/chatclusters.yaml", "templates/crds/chatregions.yaml")
MANAGER = "chatconnect-chart-tests"
SCHEMA_ERROR = "values don't meet the specifications of the schema(s)"

# The operator's ClusterRole, rule for rule (operator/chatconnect_operator/RBAC.md).
RBAC_MD = ROOT / "operator" / "chatconnect_operator" / "RBAC.md"
EXPECTED_RULES = [
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
     "verbs": ["list", "watch"]},
    {"apiGroups": [GROUP], "resources": ["chatclusters", "chatregions"],
     "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": [GROUP], "resources": ["chatclusters/status", "chatregions/status"],
     "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["create", "patch", "delete"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create", "patch", "delete"]},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"],
     "verbs": ["create", "patch", "delete"]},
]  # fmt: skip

# The defaults of docs/kubernetes.md, as the API server must fill them in.
RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
FAILOVER_DEFAULTS = {
    "mode": "Automatic",
    "detectionWindowSeconds": 60,
    "failback": "Manual",
    "failbackStableSeconds": 300,
}
GATEWAY_DEFAULTS = {
    "minReplicas": 2,
    "maxReplicas": 20,
    "targetConnectionsPerPod": 50000,
    "tolerance": 0.1,
    "maxStep": 4,
    "scaleUpCooldownSeconds": 60,
    "scaleDownCooldownSeconds": 300,
    "resources": RESOURCES,
}
SERVICE_DEFAULTS = {"replicas": 2, "resources": RESOURCES}
TURN_DEFAULTS = {
    "enabled": True,
    "image": "coturn/coturn:4.6.3",
    "minReplicas": 1,
    "maxReplicas": 10,
    "targetAllocationsPerPod": 500,
    "tolerance": 0.1,
    "maxStep": 2,
    "scaleUpCooldownSeconds": 60,
    "scaleDownCooldownSeconds": 300,
    "externalAddresses": [],
}
HEALTH_DEFAULTS = {"tls": True, "periodSeconds": 10, "timeoutSeconds": 2}


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render(kube: Kube, *args: str) -> str:
    return kube.helm_run("template", "chatconnect", CHART, *args).stdout


def chat_cluster(name: str = "prod", **spec: Any) -> dict[str, Any]:
    store = {
        "region": "eu-west",
        "scylla": {"contactPoints": ["scylla.eu-west.svc"], "localDatacenter": "eu-west-1"},
        "redis": {"url": "redis://redis.eu-west.svc:6379/0"},
    }
    return {
        "apiVersion": API,
        "kind": "ChatCluster",
        "metadata": {"name": name},
        "spec": {"version": "0.1.0", "stores": [store], **spec},
    }


def chat_region(name: str = "eu-west", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ChatRegion",
        "metadata": {"name": name},
        "spec": {
            "cluster": "prod",
            "health": {"endpoint": "gateway.eu-west.example.com:443"},
            **spec,
        },
    }


def gone_or_deleting(kube: Kube, *args: str) -> bool:
    """NotFound, or marked for deletion (a live operator's finalizer may still hold it)."""
    found = kube.kubectl_run("get", *args, "-o", "json", check=False)
    if found.returncode != 0:
        assert "NotFound" in found.stderr, found.stderr
        return True
    return "deletionTimestamp" in json.loads(found.stdout)["metadata"]


@pytest.fixture(scope="session")
def crds(kube: Kube) -> list[dict[str, Any]]:
    """The chart's CRDs, applied server-side (they may exist already) and established."""
    args = [arg for template in CRD_TEMPLATES for arg in ("--show-only", template)]
    rendered = render(kube, *args)
    kube.kubectl_run(
        "apply", "--server-side", "--force-conflicts", f"--field-manager={MANAGER}", "-f", "-",
        stdin=rendered,
    )  # fmt: skip
    kube.kubectl_run(
        "wait", "--for=condition=Established", *(f"crd/{crd}" for crd in CRDS), "--timeout=60s"
    )
    return documents(rendered)


@pytest.fixture
def release(kube: Kube) -> Iterator[str]:
    """A unique release name; its cluster-scoped RBAC is removed afterwards whatever happens."""
    name = f"cc{secrets.token_hex(3)}"
    try:
        yield name
    finally:
        listed = json.loads(kube.helm_run("list", "-A", "-o", "json").stdout)
        for found in listed:
            if found["name"] == name:
                kube.helm_run("uninstall", name, "-n", found["namespace"], "--ignore-not-found")
        kube.kubectl_run(
            "delete", "clusterrole,clusterrolebinding", "--ignore-not-found",
            "-l", f"app.kubernetes.io/instance={name}",
        )  # fmt: skip


# -- lint and schema -------------------------------------------------------------------


@pytest.mark.parametrize("values", [[], ["-f", MULTI_REGION]], ids=["defaults", "multi-region"])
def test_helm_lint_strict_passes(kube: Kube, values: list[str]) -> None:
    linted = kube.helm_run("lint", "--strict", CHART, *values)
    assert "1 chart(s) linted, 0 chart(s) failed" in linted.stdout
    assert "[ERROR]" not in linted.stdout and "[WARNING]" not in linted.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicas=2"], "at '': additional properties 'replicas' not allowed"),
        (
            ["--set", "operator.replicaCount=2"],
            "at '/operator': additional properties 'replicaCount' not allowed",
        ),
        (["--set", "cluster.shards=many"], "at '/cluster/shards': got string, want integer"),
        (["--set", "crds.keep=maybe"], "at '/crds/keep': got string, want boolean"),
        (
            ["--set", "keepCustomResources=yes"],
            "at '/keepCustomResources': got string, want boolean",
        ),
        (["--set", "cluster.shards=70000"], "at '/cluster/shards': maximum: got 70,000, want"),
        (["--set", "cluster.shards=0"], "at '/cluster/shards': minimum: got 0, want 1"),
        (
            ["--set", "cluster.failover.detectionWindowSeconds=5"],
            "at '/cluster/failover/detectionWindowSeconds': minimum: got 5, want 10",
        ),
        (
            ["--set", "cluster.failover.mode=Sometimes"],
            "at '/cluster/failover/mode': value must be one of 'Automatic', 'Manual'",
        ),
        (["--set", "image.pullPolicy=Sometimes"], "at '/image/pullPolicy': value must be one of"),
        (["--set", "cluster.create=true"], "at '/cluster/stores': minItems: got 0, want 1"),
        (
            ["--set", "regions[0].name=EU", "--set", "regions[0].health.endpoint=gw:443"],
            "at '/regions/0/name': 'EU' does not match pattern",
        ),
        (["--set", "regions[0].name=eu"], "at '/regions/0': missing property 'health'"),
        (
            ["--set", "regions[0].name=eu", "--set", "regions[0].health.endpoint=gw:443",
             "--set-json", "regions[0].gateway.tolerance=0.9"],
            "at '/regions/0/gateway/tolerance': maximum: got 0.9, want 0.5",
        ),
        (
            ["--set", "operator.resources.limits.memory=lots"],
            "at '/operator/resources/limits/memory'",
        ),
        (
            ["--set", "operator.containerSecurityContext.privilegd=true"],
            "at '/operator/containerSecurityContext': additional properties 'privilegd'",
        ),
    ],
    ids=[
        "unknown-key", "unknown-nested-key", "shards-not-integer", "keep-not-bool",
        "keep-cr-not-bool",
        "shards-above-65536", "shards-below-1", "detection-window-below-10", "failover-mode-enum",
        "pull-policy-enum", "cluster-without-stores", "region-name-pattern",
        "region-without-health", "tolerance-above-0.5", "bad-quantity", "misspelt-security-key",
    ],
)  # fmt: skip
def test_values_breaking_the_schema_are_refused(kube: Kube, args: list[str], message: str) -> None:
    refused = kube.helm_run("template", "chatconnect", CHART, *args, check=False)
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert SCHEMA_ERROR in refused.stderr
    assert message in refused.stderr, refused.stderr


def test_a_region_without_a_store_is_refused(kube: Kube) -> None:
    refused = kube.helm_run(
        "template", "chatconnect", CHART, "-f", MULTI_REGION,
        "--set", "regions[2].name=ap-south", "--set", "regions[2].health.endpoint=gw:443",
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert 'region "ap-south" has no entry in cluster.stores' in refused.stderr


# -- what the chart renders -------------------------------------------------------------


def test_default_values_render_the_crds_and_the_operator_only(kube: Kube) -> None:
    rendered = documents(render(kube, "-n", "chat"))
    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for doc in rendered)
    assert kinds == [
        ("ClusterRole", "chatconnect-operator"),
        ("ClusterRoleBinding", "chatconnect-operator"),
        ("CustomResourceDefinition", CRDS[0]),
        ("CustomResourceDefinition", CRDS[1]),
        ("Deployment", "chatconnect-operator"),
        ("ServiceAccount", "chatconnect-operator"),
    ]
    for doc in rendered:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "chatconnect"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "chatconnect-0.1.0"
        if doc["kind"] == "CustomResourceDefinition":
            assert doc["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    (deployment,) = (doc for doc in rendered if doc["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/chatconnect/chatconnect:0.1.0"


def test_crd_values_switch_the_crds_and_their_keep_policy(kube: Kube) -> None:
    without = documents(render(kube, "--set", "crds.enabled=false"))
    assert "CustomResourceDefinition" not in {doc["kind"] for doc in without}
    unkept = documents(render(kube, "--set", "crds.keep=false"))
    crds = [doc for doc in unkept if doc["kind"] == "CustomResourceDefinition"]
    assert len(crds) == 2
    assert all("annotations" not in doc["metadata"] for doc in crds)


def test_the_image_tag_defaults_to_app_version_and_a_digest_wins(kube: Kube) -> None:
    def image(*args: str) -> str:
        text = render(kube, "--show-only", "templates/operator-deployment.yaml", *args)
        return str(documents(text)[0]["spec"]["template"]["spec"]["containers"][0]["image"])

    assert image() == "ghcr.io/chatconnect/chatconnect:0.1.0"
    assert image("--set", "image.tag=0.2.0-rc.1") == "ghcr.io/chatconnect/chatconnect:0.2.0-rc.1"
    digest = "sha256:" + "ab" * 32
    assert image("--set", f"image.digest={digest}") == f"ghcr.io/chatconnect/chatconnect@{digest}"


def test_the_rendered_chart_is_accepted_by_the_api_server(
    kube: Kube, namespace: str, crds: list[dict[str, Any]]
) -> None:
    """Every object of a multi-region render passes the server's validation (dry run).

    The ChatCluster and ChatRegions are only accepted because the `crds` fixture has
    established their CRDs first: sent in one batch with the CRDs absent, kubectl fails on
    them with "no matches for kind", as `helm install` does.
    """
    rendered = render(kube, "-n", namespace, "-f", MULTI_REGION)
    objects = documents(rendered)
    assert [doc["kind"] for doc in objects].count("ChatRegion") == 2
    applied = kube.kubectl_run(
        "apply", "--server-side", "--dry-run=server", "--force-conflicts",
        f"--field-manager={MANAGER}", "-n", namespace, "-f", "-", stdin=rendered,
    )  # fmt: skip
    lines = applied.stdout.splitlines()
    assert len(lines) == len(objects)
    assert all(line.endswith("(server dry run)") for line in lines)
    for expected in ("chatcluster.chatconnect.io/prod", "chatregion.chatconnect.io/us-east"):
        assert any(line.startswith(expected + " ") for line in lines), lines
    # A dry run stores nothing.
    assert kube.get("chatclusters", "-n", namespace)["items"] == []


def test_the_operator_pod_meets_the_restricted_pod_security_standard(
    kube: Kube, namespace: str
) -> None:
    kube.kubectl_run("label", "namespace", namespace, "pod-security.kubernetes.io/warn=restricted")

    def dry_run(*args: str) -> str:
        template = "templates/operator-deployment.yaml"
        rendered = render(kube, "-n", namespace, "--show-only", template, *args)
        applied = kube.kubectl_run(
            "apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=rendered
        )
        assert "(server dry run)" in applied.stdout
        return applied.stderr

    assert "PodSecurity" not in dry_run()
    # The check is live: the same pod allowed to escalate privileges is flagged.
    warned = dry_run("--set", "operator.containerSecurityContext.allowPrivilegeEscalation=true")
    assert 'would violate PodSecurity "restricted:latest"' in warned
    assert "allowPrivilegeEscalation != false" in warned


# -- install, upgrade, uninstall --------------------------------------------------------


def test_install_upgrade_and_uninstall(
    kube: Kube, namespace: str, release: str, crds: list[dict[str, Any]]
) -> None:
    operator = f"{release}-chatconnect-operator"
    # The CRDs exist already (fixture, other releases): this release adopts them.
    kube.helm_run("install", release, CHART, "-n", namespace, "--take-ownership",
                  "--timeout", "60s")  # fmt: skip
    releases = json.loads(kube.helm_run("list", "-n", namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"], r["app_version"]) for r in releases] == [
        (release, "deployed", "0.1.0")
    ]

    deployment = kube.get("deployment", operator, "-n", namespace)
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == operator
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/chatconnect/chatconnect:0.1.0"
    assert container["command"] == [
        "kopf", "run", "--standalone", "--all-namespaces",
        "--liveness=http://0.0.0.0:8080/healthz", "-m", "chatconnect_operator.main",
    ]  # fmt: skip
    assert container["livenessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": 8080,
        "scheme": "HTTP",
    }
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["runAsNonRoot"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "256Mi"},
    }
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]

    kube.get("serviceaccount", operator, "-n", namespace)
    role = kube.get("clusterrole", operator)
    assert role["rules"] == EXPECTED_RULES
    binding = kube.get("clusterrolebinding", operator)
    assert binding["roleRef"]["name"] == operator
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": operator, "namespace": namespace}
    ]
    assert_the_operator_may_do_exactly_its_job(
        kube, f"system:serviceaccount:{namespace}:{operator}"
    )

    for crd in CRDS:
        annotations = kube.get("crd", crd)["metadata"]["annotations"]
        assert annotations["helm.sh/resource-policy"] == "keep"
        assert annotations["meta.helm.sh/release-name"] == release
    assert kube.get("chatclusters", "-n", namespace)["items"] == []

    # The CRDs exist now, so an upgrade can create the custom resources.
    kube.helm_run("upgrade", release, CHART, "-n", namespace, "--reuse-values",
                  "-f", MULTI_REGION, "--timeout", "60s")  # fmt: skip
    cluster = kube.get("chatcluster", "prod", "-n", namespace)["spec"]
    assert cluster["image"] == "ghcr.io/chatconnect/chatconnect"
    assert cluster["version"] == "0.1.0"
    assert cluster["imagePullPolicy"] == "IfNotPresent"  # CRD default
    assert cluster["shards"] == 1024
    eu, us = cluster["stores"]
    assert (eu["region"], eu["scylla"]["port"], eu["scylla"]["keyspace"]) == (
        "eu-west", 9042, "chatconnect"
    )  # fmt: skip
    assert us["scylla"]["port"] == 19042
    assert cluster["failover"] == {
        "mode": "Automatic",
        "detectionWindowSeconds": 30,
        "failback": "Automatic",
        "failbackStableSeconds": 600,
    }
    eu_west = kube.get("chatregion", "eu-west", "-n", namespace)["spec"]
    assert eu_west == {
        "cluster": "prod",
        "failoverRegion": "us-east",
        "drain": False,
        "gateway": GATEWAY_DEFAULTS,
        "services": {name: SERVICE_DEFAULTS for name in ("router", "users", "devices", "keys")},
        "turn": TURN_DEFAULTS,
        "health": {"endpoint": "gateway.eu-west.example.com:443", **HEALTH_DEFAULTS},
    }
    us_east = kube.get("chatregion", "us-east", "-n", namespace)["spec"]
    assert us_east["gateway"] == {**GATEWAY_DEFAULTS, "minReplicas": 3, "maxReplicas": 30}
    assert us_east["services"]["router"] == {**SERVICE_DEFAULTS, "replicas": 4}
    assert us_east["services"]["keys"] == SERVICE_DEFAULTS
    assert us_east["turn"]["externalAddresses"] == ["203.0.113.7", "2001:db8::7"]
    assert us_east["health"]["tls"] is False

    (container,) = kube.get("deployment", operator, "-n", namespace)["spec"]["template"]["spec"][
        "containers"
    ]
    assert {"name": "CHATCONNECT_OPERATOR_HEALTH_CA_FILE",
            "value": "/etc/chatconnect/health-ca/ca.pem"} in container["env"]  # fmt: skip
    assert container["volumeMounts"][1]["mountPath"] == "/etc/chatconnect/health-ca"

    # An upgrade that would re-shard every user is refused by the API server.
    reshard = kube.helm_run(
        "upgrade", release, CHART, "-n", namespace, "--reuse-values",
        "--set", "cluster.shards=2048", "--timeout", "60s", check=False,
    )  # fmt: skip
    assert reshard.returncode != 0
    assert 'spec.shards: Invalid value: "integer": shards is immutable' in reshard.stderr
    assert kube.get("chatcluster", "prod", "-n", namespace)["spec"]["shards"] == 1024

    uninstalled = kube.helm_run("uninstall", release, "-n", namespace, "--timeout", "60s")
    assert "These resources were kept due to the resource policy" in uninstalled.stdout
    kept = [f"[CustomResourceDefinition] {crd}" for crd in CRDS] + [
        "[ChatCluster] prod",
        "[ChatRegion] eu-west",
        "[ChatRegion] us-east",
    ]
    for resource in kept:
        assert resource in uninstalled.stdout
    for args in (
        ["deployment", operator, "-n", namespace],
        ["serviceaccount", operator, "-n", namespace],
        ["clusterrole", operator],
        ["clusterrolebinding", operator],
    ):
        gone = kube.kubectl_run("get", *args, check=False)
        assert "NotFound" in gone.stderr, args
    for crd in CRDS:  # kept: other namespaces' ChatClusters live on
        assert kube.get("crd", crd)["metadata"]["name"] == crd
    # Kept too (keepCustomResources): uninstalling the operator leaves the deployment up.
    for kind, name in (("chatcluster", "prod"), ("chatregion", "eu-west")):
        assert "deletionTimestamp" not in kube.get(kind, name, "-n", namespace)["metadata"]


def test_install_with_external_crds_and_uninstall_without_keeping_the_resources(
    kube: Kube, namespace: str, release: str, crds: list[dict[str, Any]]
) -> None:
    """The README's other path: CRDs applied beforehand, one install with the resources."""
    kube.helm_run(
        "install", release, CHART, "-n", namespace, "-f", MULTI_REGION,
        "--set", "crds.enabled=false", "--set", "keepCustomResources=false", "--timeout", "60s",
    )  # fmt: skip
    regions = kube.get("chatregions", "-n", namespace)["items"]
    assert sorted(r["metadata"]["name"] for r in regions) == ["eu-west", "us-east"]
    for crd in CRDS:  # not this release's
        annotations = kube.get("crd", crd)["metadata"].get("annotations", {})
        assert annotations.get("meta.helm.sh/release-name") != release

    uninstalled = kube.helm_run("uninstall", release, "-n", namespace, "--timeout", "60s")
    assert "kept due to the resource policy" not in uninstalled.stdout
    assert gone_or_deleting(kube, "chatcluster", "prod", "-n", namespace)
    for region in ("eu-west", "us-east"):
        assert gone_or_deleting(kube, "chatregion", region, "-n", namespace)
    for crd in CRDS:
        assert kube.get("crd", crd)["metadata"]["name"] == crd


def test_the_cluster_role_is_the_one_rbac_md_documents(kube: Kube) -> None:
    """operator/chatconnect_operator/RBAC.md is the operator's own list, in a YAML block."""
    assert RBAC_MD.exists(), f"{RBAC_MD} lists the operator's RBAC; it is missing"
    text = RBAC_MD.read_text()
    block = text.split("```yaml", 1)[1].split("```", 1)[0]
    documented = yaml.safe_load(block)
    assert documented["kind"] == "ClusterRole"
    (rendered,) = documents(render(kube, "--show-only", "templates/operator-clusterrole.yaml"))
    assert rendered["rules"] == documented["rules"] == EXPECTED_RULES


def assert_the_operator_may_do_exactly_its_job(kube: Kube, user: str) -> None:
    def can(verb: str, resource: str, *args: str) -> bool:
        answer = kube.kubectl_run("auth", "can-i", verb, resource, *args, "--as", user, check=False)
        return answer.stdout.strip() == "yes"

    deadline = time.monotonic() + 30  # the authorizer learns of the binding from a watch
    while not can("watch", f"chatclusters.{GROUP}", "-A") and time.monotonic() < deadline:
        time.sleep(0.2)
    allowed = [
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
        ("watch", f"chatclusters.{GROUP}", "-A"),
        ("get", f"chatregions.{GROUP}", "-n", "any"),
        ("patch", f"chatregions.{GROUP}", "-n", "any"),
        ("patch", f"chatclusters.{GROUP}", "--subresource=status", "-n", "any"),
        ("create", "events", "-n", "any"),
        ("get", "configmaps", "-n", "any"),
        ("patch", "configmaps", "-n", "any"),
        ("create", "secrets", "-n", "any"),
        ("get", "secrets", "-n", "any"),
        ("delete", "services", "-n", "any"),
        ("create", "deployments.apps", "-n", "any"),
        ("delete", "poddisruptionbudgets.policy", "-n", "any"),
    ]
    denied = [
        ("list", "secrets", "-A"),
        ("watch", "secrets", "-n", "any"),
        ("patch", "secrets", "-n", "any"),
        ("create", f"chatclusters.{GROUP}", "-n", "any"),
        ("delete", f"chatregions.{GROUP}", "-n", "any"),
        ("update", f"chatregions.{GROUP}", "--subresource=status", "-n", "any"),
        ("list", "deployments.apps", "-A"),
        ("update", "deployments.apps", "-n", "any"),
        ("delete", "configmaps", "-n", "any"),
        ("create", "pods", "-n", "any"),
        ("list", "namespaces"),
        ("create", "customresourcedefinitions.apiextensions.k8s.io"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ]
    assert [check for check in allowed if not can(*check)] == []
    assert [check for check in denied if can(*check)] == []


# -- the CRDs ---------------------------------------------------------------------------


def test_the_server_fills_in_the_documented_defaults(
    kube: Kube, namespace: str, crds: list[dict[str, Any]]
) -> None:
    kube.apply(chat_cluster(), "-n", namespace)
    kube.apply(chat_region(), "-n", namespace)
    cluster = kube.get("chatcluster", "prod", "-n", namespace)["spec"]
    assert cluster == {
        "image": "ghcr.io/chatconnect/chatconnect",
        "version": "0.1.0",
        "imagePullPolicy": "IfNotPresent",
        "shards": 1024,
        "stores": [
            {
                "region": "eu-west",
                "scylla": {
                    "contactPoints": ["scylla.eu-west.svc"],
                    "localDatacenter": "eu-west-1",
                    "port": 9042,
                    "keyspace": "chatconnect",
                },
                "redis": {"url": "redis://redis.eu-west.svc:6379/0"},
            }
        ],
        "failover": FAILOVER_DEFAULTS,
    }
    region = kube.get("chatregion", "eu-west", "-n", namespace)["spec"]
    assert region == {
        "cluster": "prod",
        "drain": False,
        "gateway": GATEWAY_DEFAULTS,
        "services": {name: SERVICE_DEFAULTS for name in ("router", "users", "devices", "keys")},
        "turn": TURN_DEFAULTS,
        "health": {"endpoint": "gateway.eu-west.example.com:443", **HEALTH_DEFAULTS},
    }


def _store(url: str = "redis://r:6379") -> dict[str, Any]:
    return {
        "region": "eu-west",
        "scylla": {"contactPoints": ["s"], "localDatacenter": "dc"},
        "redis": {"url": url},
    }


INVALID = {
    "shards-above-65536": (
        chat_cluster(shards=65537),
        ["spec.shards: Invalid value: 65537", "should be less than or equal to 65536"],
    ),
    "shards-below-1": (
        chat_cluster(shards=0),
        ["spec.shards: Invalid value: 0", "should be greater than or equal to 1"],
    ),
    "redis-url-not-redis": (
        chat_cluster(stores=[_store("http://redis.eu-west.svc:6379")]),
        [
            'spec.stores[0].redis.url: Invalid value: "http://redis.eu-west.svc:6379"',
            "should match '^rediss?://'",
        ],
    ),
    "redis-url-with-password": (
        chat_cluster(stores=[_store("redis://:hunter2@redis.eu-west.svc:6379")]),
        ["spec.stores[0].redis.url: Invalid value", "must not contain a password"],
    ),
    "failover-mode-unknown": (
        chat_cluster(failover={"mode": "Sometimes"}),
        [
            'spec.failover.mode: Unsupported value: "Sometimes"',
            'supported values: "Automatic", "Manual"',
        ],
    ),
    "detection-window-too-short": (
        chat_cluster(failover={"detectionWindowSeconds": 9}),
        ["spec.failover.detectionWindowSeconds: Invalid value: 9"],
    ),
    "version-not-semver": (
        chat_cluster(version="latest"),
        ['spec.version: Invalid value: "latest"'],
    ),
    "no-stores": (chat_cluster(stores=[]), ["spec.stores: Invalid value: 0", "at least 1 items"]),
    "store-twice": (
        chat_cluster(stores=[_store(), _store()]),
        ["spec.stores[1]: Duplicate value"],
    ),
    "cluster-name-not-dns-1035": (
        chat_cluster(name="1prod"),
        ['metadata.name: Invalid value: "string"', "must be a DNS-1035 label"],
    ),
    "gateway-max-below-min": (
        chat_region(gateway={"minReplicas": 5, "maxReplicas": 3}),
        [
            'spec.gateway.maxReplicas: Invalid value: "object"',
            "maxReplicas must be greater than or equal to minReplicas",
        ],
    ),
    "gateway-min-above-default-max": (
        chat_region(gateway={"minReplicas": 21}),
        ["spec.gateway.maxReplicas", "maxReplicas must be greater than or equal to minReplicas"],
    ),
    "turn-max-below-min": (
        chat_region(turn={"minReplicas": 4, "maxReplicas": 2}),
        ["spec.turn.maxReplicas", "maxReplicas must be greater than or equal to minReplicas"],
    ),
    "tolerance-above-half": (
        chat_region(gateway={"tolerance": 0.6}),
        ["spec.gateway.tolerance: Invalid value: 0.6", "less than or equal to 0.5"],
    ),
    "service-replicas-above-100": (
        chat_region(services={"router": {"replicas": 101}}),
        ["spec.services.router.replicas: Invalid value: 101"],
    ),
    "bad-quantity": (
        chat_region(gateway={"resources": {"limits": {"memory": "lots"}}}),
        ['spec.gateway.resources.limits.memory: Invalid value: "lots"'],
    ),
    "health-endpoint-without-port": (
        chat_region(health={"endpoint": "gateway.example.com"}),
        ['spec.health.endpoint: Invalid value: "gateway.example.com"'],
    ),
    "health-missing": (
        {**chat_region(), "spec": {"cluster": "prod"}},
        ["spec.health: Required value"],
    ),
    "turn-address-not-ip": (
        chat_region(turn={"externalAddresses": ["relay.example.com"]}),
        ["spec.turn.externalAddresses[0]"],
    ),
    "fails-over-to-itself": (
        chat_region(failoverRegion="eu-west"),
        ["spec.failoverRegion: Invalid value", "a region cannot fail over to itself"],
    ),
    "region-name-not-dns-label": (
        chat_region(name="eu.west"),
        ['metadata.name: Invalid value: "string"', "must be a DNS label"],
    ),
}


@pytest.mark.parametrize("case", INVALID)
def test_the_crds_reject_invalid_objects_naming_the_field(
    kube: Kube, namespace: str, crds: list[dict[str, Any]], case: str
) -> None:
    manifest, messages = INVALID[case]
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    rejected = kube.kubectl_run(
        "create", "--dry-run=server", "-n", namespace, "-f", "-",
        stdin=json.dumps(manifest), check=False,
    )  # fmt: skip
    assert rejected.returncode != 0
    assert f'The {kind} "{name}" is invalid' in rejected.stderr
    for message in messages:
        assert message in rejected.stderr, rejected.stderr


def test_shards_cannot_change_after_creation(
    kube: Kube, namespace: str, crds: list[dict[str, Any]]
) -> None:
    kube.apply(chat_cluster(shards=4096), "-n", namespace)
    changed = kube.kubectl_run(
        "patch", "chatcluster", "prod", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"shards":8192}}', check=False,
    )  # fmt: skip
    assert changed.returncode != 0
    assert 'spec.shards: Invalid value: "integer": shards is immutable' in changed.stderr
    # Removing the field would default it to 1024: also a change.
    removed = kube.kubectl_run(
        "patch", "chatcluster", "prod", "-n", namespace, "--type=json",
        "-p", '[{"op":"remove","path":"/spec/shards"}]', check=False,
    )  # fmt: skip
    assert removed.returncode != 0
    assert "shards is immutable" in removed.stderr
    # Other fields still change.
    kube.kubectl_run(
        "patch", "chatcluster", "prod", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"failover":{"mode":"Manual"}}}',
    )  # fmt: skip
    spec = kube.get("chatcluster", "prod", "-n", namespace)["spec"]
    assert (spec["shards"], spec["failover"]["mode"]) == (4096, "Manual")


def test_status_is_a_subresource_in_the_documented_shape(
    kube: Kube, namespace: str, crds: list[dict[str, Any]]
) -> None:
    kube.apply(chat_cluster(), "-n", namespace)
    # A status sent with the main resource is dropped...
    kube.apply({**chat_cluster(), "status": {"observedGeneration": 7}}, "-n", namespace)
    assert "status" not in kube.get("chatcluster", "prod", "-n", namespace)
    # ...and one that is not a metav1.Condition is refused.
    bad = kube.kubectl_run(
        "patch", "chatcluster", "prod", "-n", namespace, "--subresource=status",
        "--type=merge", "-p", '{"status":{"conditions":[{"type":"Ready","status":"Yes"}]}}',
        check=False,
    )  # fmt: skip
    assert bad.returncode != 0
    assert 'status.conditions[0].status: Unsupported value: "Yes"' in bad.stderr
    assert "status.conditions[0].reason: Required value" in bad.stderr


def _condition(status: str) -> dict[str, str]:
    return {
        "type": "Ready",
        "status": status,
        "reason": "Reconciled",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


def _table(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_kubectl_get_shows_the_printer_columns(
    kube: Kube, namespace: str, crds: list[dict[str, Any]]
) -> None:
    kube.apply(chat_cluster(shards=2048), "-n", namespace)
    kube.apply(chat_region(), "-n", namespace)
    cluster_status = {
        "observedGeneration": 1,
        "conditions": [_condition("True")],
        "shardMap": {
            "epoch": 7,
            "configMap": "prod-shard-map",
            "shardsPerRegion": {"eu-west": 2048},
        },
    }
    region_status = {
        "observedGeneration": 1,
        "conditions": [_condition("False")],
        "gateway": {
            "replicas": 3,
            "load": 120000,
            "lastScaleTime": "2026-01-01T00:00:00Z",
            "lastScaleUpTime": "2026-01-01T00:00:00Z",
            "lastScaleDownTime": "2025-12-31T00:00:00Z",
        },
        "turn": {"replicas": 2, "load": 700},
        "health": {"healthy": True, "lastProbeTime": "2026-01-01T00:00:00Z",
                   "since": "2026-01-01T00:00:00Z", "message": "SERVING"},
        "failedOver": False,
        "homedShards": 2048,
    }  # fmt: skip
    for kind, status in (("chatcluster", cluster_status), ("chatregion", region_status)):
        kube.kubectl_run(
            "patch", kind, "prod" if kind == "chatcluster" else "eu-west", "-n", namespace,
            "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}),
        )  # fmt: skip

    # Every documented status field is kept (none is pruned by the schema).
    stored = kube.get("chatregion", "eu-west", "-n", namespace)["status"]
    assert stored == region_status
    assert kube.get("chatcluster", "prod", "-n", namespace)["status"] == cluster_status

    ccl = _table(kube.kubectl_run("get", "ccl", "-n", namespace).stdout)
    assert ccl[0] == ["NAME", "VERSION", "SHARDS", "EPOCH", "READY", "AGE"]
    assert ccl[1][:5] == ["prod", "0.1.0", "2048", "7", "True"]
    crg = _table(kube.kubectl_run("get", "crg", "-n", namespace).stdout)
    assert crg[0] == ["NAME", "CLUSTER", "GATEWAYS", "TURN", "HEALTHY", "SHARDS", "READY", "AGE"]
    assert crg[1][:7] == ["eu-west", "prod", "3", "2", "true", "2048", "False"]
    # The category lists both kinds.
    names = kube.kubectl_run("get", "chatconnect", "-n", namespace, "-o", "name").stdout.split()
    assert sorted(names) == [
        "chatcluster.chatconnect.io/prod",
        "chatregion.chatconnect.io/eu-west",
    ]


def test_the_crds_are_what_the_contract_says(crds: list[dict[str, Any]]) -> None:
    by_name = {crd["metadata"]["name"]: crd for crd in crds}
    assert sorted(by_name) == sorted(CRDS)
    names = (("ChatCluster", "ccl"), ("ChatRegion", "crg"))
    for crd, (kind, short) in zip(CRDS, names, strict=True):
        spec = by_name[crd]["spec"]
        assert spec["group"] == GROUP
        assert spec["scope"] == "Namespaced"
        assert spec["names"]["kind"] == kind
        assert spec["names"]["shortNames"] == [short]
        assert spec["names"]["categories"] == ["chatconnect"]
        (version,) = spec["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
        assert version["subresources"] == {"status": {}}
        schema = version["schema"]["openAPIV3Schema"]
        status = schema["properties"]["status"]["properties"]
        conditions = status["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert "observedGeneration" in status

        def undescribed(node: dict[str, Any], path: str) -> Iterator[str]:
            if "description" not in node and not path.endswith(("[]", ".metadata")):
                yield path
            for key, child in node.get("properties", {}).items():
                yield from undescribed(child, f"{path}.{key}")
            if "items" in node:
                yield from undescribed(node["items"], f"{path}[]")

        assert [path for path in undescribed(schema, kind) if path != kind] == []
