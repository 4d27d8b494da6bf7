"""The operator's Kubernetes I/O: idempotent apply, create-once, status patches.

Built on the kubernetes client's asyncio flavour (kubernetes.aio), so handlers never
block kopf's event loop. Objects are sent with server-side apply (field manager
`chatconnect-operator`, force): one PATCH creates the object when it is missing and
otherwise sets exactly the fields the builders describe, removing ones the operator set
before and no longer does; no read-modify-write, hence no lost update between two
handlers applying the same object. Status writes that merge a shared list (conditions)
are read-modify-write with the resourceVersion as a precondition and retried on 409;
after a few lost races they raise kopf.TemporaryError so kopf retries later.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import kopf
from kubernetes.aio import client, config

from chatconnect_operator import GROUP, VERSION

FIELD_MANAGER = "chatconnect-operator"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
STATUS_ATTEMPTS = 5

StatusMutation = Callable[[Mapping[str, Any]], dict[str, Any] | None]
"""Given the current object, the merge patch of its status (None: nothing to write)."""


class Kube:
    """A connection to the API server (one per operator run; see handlers.lifecycle)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.policy = client.PolicyV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    @classmethod
    async def connect(cls) -> Kube:
        """$KUBECONFIG when set; else, in a pod, its service account; else ~/.kube/config."""
        configuration = client.Configuration()
        kubeconfig = os.environ.get("KUBECONFIG")
        if not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        else:
            # Named explicitly: the library reads $KUBECONFIG once, at its import.
            await config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig or None,
                client_configuration=configuration,
                persist_config=False,
            )
        return cls(client.ApiClient(configuration))

    async def close(self) -> None:
        await self.api.close()  # type: ignore[no-untyped-call]

    def _patcher(self, kind: str) -> Callable[..., Awaitable[Any]]:
        patchers: dict[str, Callable[..., Awaitable[Any]]] = {
            "ConfigMap": self.core.patch_namespaced_config_map,
            "Secret": self.core.patch_namespaced_secret,
            "Service": self.core.patch_namespaced_service,
            "Deployment": self.apps.patch_namespaced_deployment,
            "PodDisruptionBudget": self.policy.patch_namespaced_pod_disruption_budget,
        }
        try:
            return patchers[kind]
        except KeyError:
            raise ValueError(f"the operator does not manage {kind} objects") from None

    async def apply(self, obj: Mapping[str, Any]) -> None:
        """Server-side apply of a whole object.

        A `metadata.resourceVersion` in `obj` makes the write conditional (409 when the
        object changed since it was read), for compare-and-swap publication.
        """
        metadata = obj["metadata"]
        patch = self._patcher(obj["kind"])
        await patch(
            metadata["name"],
            metadata["namespace"],
            dict(obj),
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY,
        )

    async def create_config_map(self, obj: Mapping[str, Any]) -> None:
        """Creates a ConfigMap that must not exist yet (409 when it does): the first
        publication of a shard map, which no concurrent pass may overwrite."""
        config_map = client.V1ConfigMap.from_dict(dict(obj))
        if config_map is None:
            raise ValueError("not a ConfigMap")
        await self.core.create_namespaced_config_map(
            obj["metadata"]["namespace"], config_map, field_manager=FIELD_MANAGER
        )

    async def create_once(self, obj: Mapping[str, Any]) -> bool:
        """Creates a Secret unless one of that name exists (then leaves it untouched:
        generated keys are never regenerated). True when it was created."""
        if obj["kind"] != "Secret":
            raise ValueError("create_once is for generated Secrets")
        secret = client.V1Secret.from_dict(dict(obj))
        if secret is None:
            raise ValueError("not a Secret")
        try:
            await self.core.create_namespaced_secret(
                obj["metadata"]["namespace"], secret, field_manager=FIELD_MANAGER
            )
        except client.ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    async def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Deletes an object the operator retired; False when it was already gone."""
        deleters: dict[str, Callable[..., Awaitable[Any]]] = {
            "Service": self.core.delete_namespaced_service,
            "Deployment": self.apps.delete_namespaced_deployment,
            "PodDisruptionBudget": self.policy.delete_namespaced_pod_disruption_budget,
        }
        try:
            await deleters[kind](name, namespace)
        except client.ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    async def config_map(self, namespace: str, name: str) -> tuple[dict[str, str], str] | None:
        """A ConfigMap's data and resourceVersion; None when absent."""
        try:
            found = await self.core.read_namespaced_config_map(name, namespace)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        version = found.metadata.resource_version if found.metadata is not None else None
        return dict(found.data or {}), version or ""

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """One decoded value of a Secret; None when the Secret or the key is missing."""
        try:
            secret = await self.core.read_namespaced_secret(name, namespace)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        encoded = (secret.data or {}).get(key)
        return base64.b64decode(encoded).decode() if encoded is not None else None

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A ChatCluster or ChatRegion; None when absent."""
        try:
            found = await self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        return found if isinstance(found, dict) else None

    async def list_objects(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        listed = await self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        items = listed.get("items", []) if isinstance(listed, dict) else []
        return [item for item in items if isinstance(item, dict)]

    async def patch_metadata(
        self, plural: str, namespace: str, name: str, metadata: Mapping[str, Any]
    ) -> None:
        """A merge patch of metadata (None values remove keys, e.g. an annotation)."""
        await self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"metadata": dict(metadata)},
            _content_type=MERGE,
        )

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        """A merge patch of fields only this caller writes (no precondition needed)."""
        try:
            await self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                {"status": dict(status)},
                _content_type=MERGE,
            )
        except client.ApiException as error:
            if error.status != 404:  # deleted meanwhile: nothing left to report on
                raise

    async def update_status(
        self, plural: str, namespace: str, name: str, mutate: StatusMutation
    ) -> bool:
        """Read-modify-write of a status under the resourceVersion precondition.

        `mutate` sees the freshest object on every attempt. False when the object is gone.
        """
        for _ in range(STATUS_ATTEMPTS):
            current = await self.get(plural, namespace, name)
            if current is None:
                return False
            patch = mutate(current)
            if patch is None:
                return True
            body = {
                "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                "status": patch,
            }
            try:
                await self.custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, namespace, plural, name, body, _content_type=MERGE
                )
            except client.ApiException as error:
                if error.status == 409:
                    continue  # another writer won the race: read again
                if error.status == 404:
                    return False
                raise
            return True
        raise kopf.TemporaryError(f"status of {plural}/{name} kept changing; retrying", delay=1)


def as_body(obj: Mapping[str, Any]) -> kopf.Body:
    """A listed or fetched object as kopf's Body (what kopf.event takes)."""
    return kopf.Body(cast(kopf.RawBody, dict(obj)))


def is_conflict(error: BaseException) -> bool:
    """A 409 from the API server (a precondition or an AlreadyExists)."""
    return isinstance(error, client.ApiException) and error.status == 409
