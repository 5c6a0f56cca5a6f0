"""deploy/k8s validated offline: Kubernetes schemas, CRD schemas, kustomize wiring,
and agreement with the settings the code reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from taskq_core.settings import Settings
from tests.deploy.support import (
    BACKLOG_METRIC,
    K8S,
    KUBERNETES_VERSION,
    PROCESS_COMMANDS,
    QUEUE_DEPTH_QUERY,
    REPO,
    TASKQ_PROCESS_EXTRA_ENV,
    containers,
    k8s_manifest_files,
    kustomize_build,
    load_schema,
    load_yaml_documents,
    referenced_files,
    settings_variables,
)

# Custom resources are not in kubernetes-validate's schemas; each is checked against
# a schema committed in tests/deploy/schemas/crds (see the README there for its source).
CRD_SCHEMAS = {
    (api_version, kind): f"crds/{api_version.replace('/', '_')}_{kind.lower()}.json"
    for api_version, kind in (
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("keda.sh/v1alpha1", "TriggerAuthentication"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PodMonitor"),
    )
}
ENTRY_POINTS = [K8S, K8S / "without-keda"]
AUTOSCALER_KINDS = {"ScaledObject", "HorizontalPodAutoscaler"}


def _manifests() -> list[tuple[str, int, dict[str, Any]]]:
    return [
        (str(path.relative_to(REPO)), index, doc)
        for path in k8s_manifest_files()
        for index, doc in enumerate(load_yaml_documents(path))
    ]


MANIFESTS = _manifests()


def _by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def test_there_are_manifests() -> None:
    kinds = {doc["kind"] for _, _, doc in MANIFESTS}
    assert {"Namespace", "ConfigMap", "Secret", "Job", "Deployment", "Service"} <= kinds
    assert {"PodDisruptionBudget", "ScaledObject", "HorizontalPodAutoscaler"} <= kinds


@pytest.mark.parametrize(
    ("path", "index", "doc"),
    MANIFESTS,
    ids=[f"{path}#{index}" for path, index, _ in MANIFESTS],
)
def test_manifest_is_valid(path: str, index: int, doc: dict[str, Any]) -> None:
    """Built-in kinds against Kubernetes' own schemas (strict: unknown fields fail)."""
    crd_schema = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
    if crd_schema is not None:
        jsonschema.validate(doc, load_schema(crd_schema), cls=jsonschema.Draft202012Validator)
        return
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path)
        pytest.fail(f"{path}#{index} {doc['kind']}: {where}: {error.message}")


def test_crd_schemas_reject_unknown_fields() -> None:
    """The committed CRD schemas are closed, so a misspelt field cannot pass unseen."""
    scaled_object = next(doc for _, _, doc in MANIFESTS if doc["kind"] == "ScaledObject")
    broken = {**scaled_object, "spec": {**scaled_object["spec"], "maxReplicas": 3}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, load_schema(CRD_SCHEMAS[("keda.sh/v1alpha1", "ScaledObject")]))


def test_every_manifest_is_reachable_from_a_kustomization() -> None:
    reached = {path for entry in ENTRY_POINTS for path in referenced_files(entry)}
    orphans = [str(path.relative_to(REPO)) for path in k8s_manifest_files() if path not in reached]
    assert orphans == []


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda path: str(path.relative_to(REPO)))
def test_each_path_scales_workers_with_exactly_one_autoscaler(entry: Path) -> None:
    """KEDA creates its own HPA: a second autoscaler on the same Deployment would fight it."""
    objects = kustomize_build(entry)
    deployments = _by_kind(objects, "Deployment")
    targets = []
    for obj in objects:
        if obj["kind"] in AUTOSCALER_KINDS:
            target = obj["spec"]["scaleTargetRef"]["name"]
            assert target in deployments
            targets.append(target)
    assert targets == ["taskq-worker"]
    assert "replicas" not in deployments["taskq-worker"]["spec"], "the autoscaler owns the count"


def test_keda_scales_on_the_queue_depth_query() -> None:
    objects = kustomize_build(K8S)
    (scaled_object,) = _by_kind(objects, "ScaledObject").values()
    (trigger,) = scaled_object["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    assert trigger["metadata"]["query"].strip() == QUEUE_DEPTH_QUERY
    assert float(trigger["metadata"]["targetQueryValue"]) > 0
    auth = _by_kind(objects, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    (secret_ref,) = auth["spec"]["secretTargetRef"]
    assert secret_ref["parameter"] == "connection"
    secret = _by_kind(objects, "Secret")[secret_ref["name"]]
    assert secret_ref["key"] in secret["stringData"]


def test_hpa_scales_on_the_exported_backlog_metric() -> None:
    (hpa,) = _by_kind(kustomize_build(K8S / "without-keda"), "HorizontalPodAutoscaler").values()
    (metric,) = hpa["spec"]["metrics"]
    assert metric["external"]["metric"]["name"] == BACKLOG_METRIC


def _container_environment(
    objects: list[dict[str, Any]], container: dict[str, Any]
) -> dict[str, str]:
    config_maps = _by_kind(objects, "ConfigMap")
    secrets = _by_kind(objects, "Secret")
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environment.update(config_maps[source["configMapRef"]["name"]]["data"])
        else:
            environment.update(secrets[source["secretRef"]["name"]]["stringData"])
    environment.update({item["name"]: item["value"] for item in container.get("env", [])})
    return environment


def _taskq_containers(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (obj["metadata"]["name"], container) for obj in objects for container in containers(obj)
    ]


def test_containers_run_the_console_scripts() -> None:
    objects = kustomize_build(K8S)
    commands = {name: container["command"] for name, container in _taskq_containers(objects)}
    assert commands == {
        "taskq-api": ["taskq-api"],
        "taskq-worker": ["taskq-worker"],
        "taskq-migrate": ["taskq-migrate"],
    }
    assert set(PROCESS_COMMANDS) == {command[0] for command in commands.values()}


def test_environment_names_are_the_settings_names() -> None:
    """Every variable handed to a taskq container is one taskq_core.settings reads."""
    objects = kustomize_build(K8S)
    allowed = settings_variables() | set(TASKQ_PROCESS_EXTRA_ENV)
    for name, container in _taskq_containers(objects):
        unknown = set(_container_environment(objects, container)) - allowed
        assert unknown == set(), f"{name} sets variables the settings do not read"
    # A Secret or ConfigMap key not read by the settings would be dead configuration.
    for kind, field in (("ConfigMap", "data"), ("Secret", "stringData")):
        for obj in _by_kind(objects, kind).values():
            assert set(obj[field]) <= settings_variables(), obj["metadata"]["name"]


def test_configuration_parses_and_matches_the_manifests() -> None:
    """The values parse as the processes will parse them, and agree with ports and grace."""
    objects = kustomize_build(K8S)
    for name, container in _taskq_containers(objects):
        settings = Settings.from_env(_container_environment(objects, container))
        assert settings.egress_block_private, f"{name}: taskq refuses private targets"
        ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
        if name == "taskq-api":
            assert ports == {"http": settings.port}
        if name == "taskq-worker":
            assert ports == {"metrics": settings.metrics_port}
            worker = _by_kind(objects, "Deployment")["taskq-worker"]
            grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            assert grace > settings.shutdown_grace_period, "SIGKILL would cut the drain short"


@pytest.mark.parametrize(
    ("deployment", "port"), [("taskq-api", "http"), ("taskq-worker", "metrics")]
)
def test_probes_use_the_health_endpoints(deployment: str, port: str) -> None:
    (container,) = _by_kind(kustomize_build(K8S), "Deployment")[deployment]["spec"]["template"][
        "spec"
    ]["containers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": port}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": port}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]


def test_pod_disruption_budgets_select_their_pods() -> None:
    objects = kustomize_build(K8S)
    deployments = _by_kind(objects, "Deployment")
    for name, budget in _by_kind(objects, "PodDisruptionBudget").items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert set(_by_kind(objects, "PodDisruptionBudget")) >= {"taskq-api"}


def test_monitors_scrape_named_ports() -> None:
    objects = kustomize_build(K8S)
    service = _by_kind(objects, "Service")["taskq-api"]
    (monitor,) = _by_kind(objects, "ServiceMonitor").values()
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= port_names
    (pod_monitor,) = _by_kind(objects, "PodMonitor").values()
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
