"""Helpers for the offline deployment checks: no Docker engine or cluster here, so
the files are parsed and checked against schemas and against the code itself."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from taskq_core.settings import ENVIRONMENT_VARIABLES

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = Path(__file__).resolve().parent / "schemas"

KUBERNETES_VERSION = "1.30"
"""Oldest Kubernetes the manifests promise to work on (HPA v2, PDB v1, Job TTL, ...)."""

PROCESS_COMMANDS = {
    "taskq-api": "taskq_api.main:main",
    "taskq-worker": "taskq_worker.main:main",
    "taskq-migrate": "taskq_core.migrate:main",
}
"""The console scripts an image may run: the same ones `make run-api`/`run-worker`/`migrate` run."""

QUEUE_DEPTH_QUERY = (
    "SELECT coalesce(sum(queue_visible_length), 0) FROM pgmq.metrics_all() "
    "WHERE queue_name LIKE 'tq\\_%'"
)
BACKLOG_METRIC = "taskq_queue_visible_messages"

# Variables that taskq's own containers may carry beyond what taskq_core.settings
# reads, each with the reason it is there.
TASKQ_PROCESS_EXTRA_ENV = {
    "PROMETHEUS_MULTIPROC_DIR": "read by prometheus-client: counters shared by granian workers",
}
IMAGE_ENV = {
    "PATH": "puts the venv's console scripts first",
    "PYTHONUNBUFFERED": "log lines reach `docker logs` at once",
    "PYTHONDONTWRITEBYTECODE": "read-only root filesystem; bytecode is compiled at build",
    "PIP_NO_CACHE_DIR": "build stage only: keeps the layer small",
    "PIP_DISABLE_PIP_VERSION_CHECK": "build stage only: no network call for a version check",
}
# Variables of third-party images in docker-compose.yml.
THIRD_PARTY_ENV = {
    "POSTGRES_PASSWORD": "the postgres image sets the superuser password from it",
}
THIRD_PARTY_ENV_PREFIXES = {
    "GF_": "Grafana reads every setting of grafana.ini as GF_<SECTION>_<KEY>",
}


def settings_variables() -> frozenset[str]:
    """The names the settings read, taken at test time so that new settings count."""
    return frozenset(ENVIRONMENT_VARIABLES)


def installed_console_scripts() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="console_scripts")}


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


@cache
def load_schema(name: str) -> dict[str, Any]:
    with (SCHEMAS / name).open(encoding="utf-8") as handle:
        schema = json.load(handle)
    assert isinstance(schema, dict)
    return schema


def is_kustomization(path: Path) -> bool:
    return path.name in {"kustomization.yaml", "kustomization.yml", "Kustomization"}


def k8s_manifest_files() -> list[Path]:
    found = [*K8S.rglob("*.yaml"), *K8S.rglob("*.yml")]
    return sorted(path for path in found if not is_kustomization(path))


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """The objects `kustomize build directory` would emit, before its transformations.

    Only resources and components are followed (files or directories holding a
    kustomization), which is all these kustomizations use; a missing entry fails.
    """
    kustomization = load_yaml(directory / "kustomization.yaml")
    objects: list[dict[str, Any]] = []
    for key in ("resources", "components"):
        for entry in kustomization.get(key, []):
            target = (directory / entry).resolve()
            assert target.exists(), f"{directory}/kustomization.yaml: {key}: {entry} is missing"
            if target.is_dir():
                objects.extend(kustomize_build(target))
            else:
                objects.extend(load_yaml_documents(target))
    return objects


def referenced_files(directory: Path) -> Iterator[Path]:
    """Every manifest file a kustomization tree reaches."""
    kustomization = load_yaml(directory / "kustomization.yaml")
    for key in ("resources", "components"):
        for entry in kustomization.get(key, []):
            target = (directory / entry).resolve()
            if target.is_dir():
                yield from referenced_files(target)
            elif target.exists():
                yield target


def containers(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Containers of a Deployment or Job (empty for other kinds)."""
    if obj.get("kind") not in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
        return []
    pod_spec = obj["spec"]["template"]["spec"]
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]
