"""The Kubernetes control plane of `tools/kubeenv up` is a real one.

kubectl and helm talk over TLS to a real kube-apiserver (with etcd and
kube-controller-manager) on loopback: objects are stored and read back, the server
validates, dry-runs, enforces CRD schemas and RBAC, and deleting a namespace really
deletes it. A test never skips: without the control plane it fails and says to run
`tools/kubeenv up`. What a test creates lives in a namespace of its own (the CRD in an
API group of its own) and is deleted at the end.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.kube import KUBEENV, Kube


def configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def user_kubeconfig(kube: Kube, path: Path, token: str) -> Path:
    """The admin kubeconfig with another bearer token (kept out of argv and logs)."""
    config = json.loads(kube.kubectl_run("config", "view", "--raw", "-o", "json").stdout)
    config["users"] = [{"name": "other", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "other"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def test_kubectl_and_the_api_server_are_the_same_release(kube: Kube) -> None:
    versions = json.loads(kube.kubectl_run("version", "-o", "json").stdout)
    client = versions["clientVersion"]["gitVersion"]
    server = versions["serverVersion"]["gitVersion"]
    assert re.fullmatch(r"v1\.\d+\.\d+", server), server
    assert client == server
    view = kube.kubectl_run("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster}")
    cluster = json.loads(view.stdout)
    assert cluster["server"] == kube.server
    assert "insecure-skip-tls-verify" not in cluster  # kubectl verifies the server's cert


def test_a_configmap_is_stored_and_read_back(kube: Kube, namespace: str) -> None:
    data = {"greeting": "hello", "limit": "42"}
    kube.apply(configmap("settings", data), "-n", namespace)
    stored = kube.get("configmap", "settings", "-n", namespace)
    assert stored["data"] == data
    assert stored["metadata"]["namespace"] == namespace
    assert stored["metadata"]["uid"]
    assert int(stored["metadata"]["resourceVersion"]) > 0
    listed = kube.get("configmaps", "-n", namespace)
    assert "settings" in [item["metadata"]["name"] for item in listed["items"]]


def test_the_server_validates_a_dry_run_and_stores_nothing(kube: Kube, namespace: str) -> None:
    bad_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bad"},
        "spec": {"selector": {"app": "x"}, "ports": [{"port": 70000}]},
    }
    rejected = kube.apply(bad_service, "-n", namespace, "--dry-run=server", check=False)
    assert rejected.returncode != 0
    assert 'The Service "bad" is invalid' in rejected.stderr
    assert "spec.ports[0].port: Invalid value: 70000" in rejected.stderr

    accepted = kube.apply(configmap("dry", {"k": "v"}), "-n", namespace, "--dry-run=server")
    assert "(server dry run)" in accepted.stdout
    gone = kube.kubectl_run("get", "configmap", "dry", "-n", namespace, check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr


def widget_crd(group: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                    "color": {"type": "string", "enum": ["red", "green"]},
                },
            }
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def test_a_crd_becomes_established_and_its_schema_is_enforced(kube: Kube, namespace: str) -> None:
    group = f"t{secrets.token_hex(4)}.kubeenv.chatconnect.test"
    crd = f"widgets.{group}"
    kube.apply(widget_crd(group))
    try:
        kube.kubectl_run("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")

        def widget(name: str, spec: dict[str, Any]) -> dict[str, Any]:
            meta = {"name": name}
            return {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": meta, "spec": spec}

        kube.apply(widget("ok", {"size": 3, "color": "red"}), "-n", namespace)
        assert kube.get(f"widgets.{group}", "ok", "-n", namespace)["spec"] == {
            "size": 3,
            "color": "red",
        }

        bad = kube.apply(widget("bad", {"size": 42, "color": "blue"}), "-n", namespace, check=False)
        assert bad.returncode != 0
        assert 'The Widget "bad" is invalid' in bad.stderr
        assert (
            "spec.size: Invalid value: 42: spec.size in body should be less than or equal to 10"
            in bad.stderr
        )
        assert 'spec.color: Unsupported value: "blue"' in bad.stderr

        missing = kube.apply(widget("empty", {"color": "green"}), "-n", namespace, check=False)
        assert missing.returncode != 0
        assert "spec.size: Required value" in missing.stderr
    finally:
        kube.kubectl_run("delete", "crd", crd, "--ignore-not-found", "--timeout=60s")


def test_rbac_denies_a_service_account_until_a_role_allows_it(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    user = f"system:serviceaccount:{namespace}:reader"
    kube.kubectl_run("create", "serviceaccount", "reader", "-n", namespace)
    token = kube.kubectl_run("create", "token", "reader", "-n", namespace, "--duration=10m")
    reader = user_kubeconfig(kube, tmp_path / "reader.kubeconfig", token.stdout.strip())

    # The API server authenticates the token it signed...
    whoami = json.loads(kube.kubectl_run("auth", "whoami", "-o", "json", kubeconfig=reader).stdout)
    assert whoami["status"]["userInfo"]["username"] == user
    # ...and RBAC gives it nothing.
    denied = kube.kubectl_run("get", "configmaps", "-n", namespace, kubeconfig=reader, check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr and f'User "{user}" cannot list' in denied.stderr
    can_i = kube.kubectl_run(
        "auth", "can-i", "list", "configmaps", "-n", namespace, "--as", user, check=False
    )
    assert (can_i.returncode, can_i.stdout.strip()) == (1, "no")

    kube.kubectl_run(
        "create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps", "-n", namespace
    )
    kube.kubectl_run(
        "create", "rolebinding", "cm-reader", "--role=cm-reader",
        f"--serviceaccount={namespace}:reader", "-n", namespace,
    )  # fmt: skip
    deadline = time.monotonic() + 30  # the authorizer learns of the binding from a watch
    while True:
        allowed = kube.kubectl_run(
            "get", "configmaps", "-n", namespace, "-o", "name", kubeconfig=reader, check=False
        )
        if allowed.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert allowed.returncode == 0, allowed.stderr
    assert "configmap/kube-root-ca.crt" in allowed.stdout.split()

    # Only what the role names, only in its namespace.
    for args in (["secrets", "-n", namespace], ["configmaps", "-n", "default"]):
        still = kube.kubectl_run("get", *args, kubeconfig=reader, check=False)
        assert still.returncode != 0
        assert "Forbidden" in still.stderr


def test_an_unknown_token_is_unauthorized(kube: Kube, tmp_path: Path) -> None:
    stranger = user_kubeconfig(kube, tmp_path / "stranger.kubeconfig", secrets.token_hex(16))
    refused = kube.kubectl_run("get", "namespaces", kubeconfig=stranger, check=False)
    assert refused.returncode != 0
    assert "Unauthorized" in refused.stderr


CHART = {
    "Chart.yaml": "apiVersion: v2\nname: kubeenv-probe\nversion: 0.1.0\n",
    "values.yaml": "message: hi\n",
    "templates/configmap.yaml": (
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: {{ .Release.Name }}-probe\n"
        "data:\n"
        "  message: {{ .Values.message | quote }}\n"
        "  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    ),
}


def test_helm_installs_and_uninstalls_a_chart(kube: Kube, namespace: str, tmp_path: Path) -> None:
    version = kube.helm_run("version", "--short").stdout.strip()
    assert re.match(r"v3\.\d+\.\d+", version), version
    chart = tmp_path / "chart"
    for name, text in CHART.items():
        (chart / name).parent.mkdir(parents=True, exist_ok=True)
        (chart / name).write_text(text)

    kube.helm_run(
        "install", "probe", str(chart), "-n", namespace, "--set", "message=hello",
        "--wait", "--timeout", "60s",
    )  # fmt: skip
    releases = json.loads(kube.helm_run("list", "-n", namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [("probe", "deployed")]
    data = kube.get("configmap", "probe-probe", "-n", namespace)["data"]
    server = json.loads(kube.kubectl_run("version", "-o", "json").stdout)["serverVersion"]
    # The chart was rendered against the live server, not helm's built-in default.
    assert data == {"message": "hello", "kubeVersion": server["gitVersion"]}

    kube.helm_run("uninstall", "probe", "-n", namespace, "--wait", "--timeout", "60s")
    gone = kube.kubectl_run("get", "configmap", "probe-probe", "-n", namespace, check=False)
    assert "NotFound" in gone.stderr


def test_the_controllers_run_and_a_deleted_namespace_goes_away(kube: Kube) -> None:
    name = f"kubeenv-test-{secrets.token_hex(4)}"
    kube.kubectl_run("create", "namespace", name)
    try:
        kube.apply(configmap("doomed", {"k": "v"}), "-n", name)
        deadline = time.monotonic() + 30  # what kube-controller-manager adds to a namespace
        while True:
            accounts = kube.get("serviceaccounts", "-n", name)["items"]
            maps = kube.get("configmaps", "-n", name)["items"]
            names = {i["metadata"]["name"] for i in accounts + maps}
            if {"default", "kube-root-ca.crt"} <= names or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert {"default", "kube-root-ca.crt", "doomed"} <= names
    finally:
        # Waits until the namespace controller has emptied and removed it.
        kube.kubectl_run("delete", "namespace", name, "--timeout=90s")
    gone = kube.kubectl_run("get", "namespace", name, check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr


def test_kubeenv_status_reports_a_healthy_control_plane() -> None:
    status = subprocess.run(
        [sys.executable, str(KUBEENV), "status"], capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stdout + status.stderr
    for server in ("etcd", "kube-apiserver", "kube-controller-manager"):
        assert f"kubeenv: {server}: running and healthy" in status.stdout
