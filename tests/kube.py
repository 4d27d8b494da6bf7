"""The real Kubernetes control plane of `tools/kubeenv up`, for tests (a pytest plugin).

`kube` runs kubectl and helm against it, isolated from the user's ~/.kube and
~/.config/helm; `namespace` is a fresh namespace deleted afterwards. A test never skips:
without the control plane it fails and says to run `tools/kubeenv up`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
ENV_FILE = CACHE / "chatconnect" / "kubeenv" / "env"
KUBEENV = Path(__file__).resolve().parent.parent / "tools" / "kubeenv"
START_IT = "start the Kubernetes control plane with `tools/kubeenv up`"


def _setting(name: str) -> str:
    if os.environ.get(name):
        return os.environ[name]
    if ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == name:
                return value.strip()
    pytest.fail(f"{name} is not set and {ENV_FILE} does not name it: {START_IT}")


@dataclass(frozen=True)
class Kube:
    """The control plane's clients, isolated from the user's ~/.kube and ~/.config/helm."""

    kubectl: str
    helm: str
    kubeconfig: Path
    server: str
    home: Path  # kubectl's discovery cache and helm's cache/config/data

    def env(self, kubeconfig: Path | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(kubeconfig or self.kubeconfig),
            "KUBECACHEDIR": str(self.home / "kube-cache"),
            "HELM_CACHE_HOME": str(self.home / "helm-cache"),
            "HELM_CONFIG_HOME": str(self.home / "helm-config"),
            "HELM_DATA_HOME": str(self.home / "helm-data"),
        }

    def _run(
        self, cmd: list[str], stdin: str | None, kubeconfig: Path | None, check: bool
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            cmd,
            input=stdin,
            env=self.env(kubeconfig),
            capture_output=True,
            text=True,
            timeout=90,
        )
        if check and proc.returncode != 0:
            name = Path(cmd[0]).name
            pytest.fail(f"{name} {' '.join(cmd[1:])} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def kubectl_run(
        self,
        *args: str,
        stdin: str | None = None,
        kubeconfig: Path | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        return self._run([self.kubectl, *args], stdin, kubeconfig, check)

    def helm_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run([self.helm, *args], None, None, check)

    def get(self, *args: str, kubeconfig: Path | None = None) -> Any:
        return json.loads(
            self.kubectl_run("get", *args, "-o", "json", kubeconfig=kubeconfig).stdout
        )

    def apply(
        self, manifest: dict[str, Any], *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.kubectl_run("apply", "-f", "-", *args, stdin=json.dumps(manifest), check=check)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Kube:
    kube = Kube(
        kubectl=_setting("CHATCONNECT_TEST_KUBECTL"),
        helm=_setting("CHATCONNECT_TEST_HELM"),
        kubeconfig=Path(_setting("KUBECONFIG")),
        server=_setting("CHATCONNECT_TEST_KUBE_APISERVER"),
        home=tmp_path_factory.mktemp("kube-home"),
    )
    for path in (kube.kubectl, kube.helm, kube.kubeconfig):
        if not Path(path).exists():
            pytest.fail(f"{path} (named in {ENV_FILE}) is missing: {START_IT}")
    ready = kube.kubectl_run("get", "--raw", "/readyz", check=False)
    if ready.stdout.strip() != "ok":
        pytest.fail(
            f"the API server at {kube.server} is not ready ({ready.stderr.strip()}): {START_IT}"
        )
    return kube


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    """A fresh namespace; deleted afterwards (kube-controller-manager empties it)."""
    name = f"cc-test-{secrets.token_hex(4)}"
    kube.kubectl_run("create", "namespace", name)
    try:
        yield name
    finally:
        kube.kubectl_run("delete", "namespace", name, "--wait=false", "--ignore-not-found")
