"""docker-compose validated offline: the Compose Specification schema, start-up order,
files it mounts, and agreement with the settings the code reads."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from taskq_core.durations import parse_duration
from taskq_core.settings import Settings
from tests.deploy.support import (
    DEPLOY,
    PROCESS_COMMANDS,
    REPO,
    TASKQ_PROCESS_EXTRA_ENV,
    THIRD_PARTY_ENV,
    THIRD_PARTY_ENV_PREFIXES,
    load_schema,
    load_yaml,
    settings_variables,
)

COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ROOT_COMPOSE_FILE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def _taskq_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in services.items()
        if service.get("command", [None])[0] in PROCESS_COMMANDS
    }


@pytest.mark.parametrize("path", [COMPOSE_FILE, ROOT_COMPOSE_FILE], ids=lambda p: p.name)
def test_compose_file_follows_the_compose_specification(path: Any) -> None:
    jsonschema.validate(
        load_yaml(path), load_schema("compose-spec.json"), cls=jsonschema.Draft7Validator
    )


def test_root_file_includes_the_deploy_file_only() -> None:
    """The reference's Quick Start, `docker-compose up --build` at the root, uses one definition."""
    root = load_yaml(ROOT_COMPOSE_FILE)
    assert root["include"] == ["deploy/docker-compose.yml"]
    assert "services" not in root


def test_the_expected_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"postgres", "migrate", "api", "worker", "prometheus", "grafana"}
    assert services["postgres"]["image"].split(":")[0] == "postgres", "plain PostgreSQL"
    assert services["api"]["ports"] == ["8080:8080"]
    assert services["worker"]["deploy"]["replicas"] >= 2


def test_services_run_the_console_scripts(services: dict[str, dict[str, Any]]) -> None:
    commands = {name: service["command"] for name, service in _taskq_services(services).items()}
    assert commands == {
        "migrate": ["taskq-migrate"],
        "api": ["taskq-api"],
        "worker": ["taskq-worker"],
    }


def test_images_build_from_the_repository_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    for service in _taskq_services(services).values():
        build = service["build"]
        context = (COMPOSE_FILE.parent / build["context"]).resolve()
        assert context == REPO
        assert (context / build["dockerfile"]).is_file()


def test_start_up_order(services: dict[str, dict[str, Any]]) -> None:
    """postgres healthy, then migrate completes, then api and workers; all have healthchecks."""
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    for name in ("postgres", "api", "worker", "prometheus"):
        assert services[name]["healthcheck"]["test"], name
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_health_checks_probe_the_health_endpoints(services: dict[str, dict[str, Any]]) -> None:
    api_check = " ".join(services["api"]["healthcheck"]["test"])
    worker_check = " ".join(services["worker"]["healthcheck"]["test"])
    assert "127.0.0.1:8080/health/ready" in api_check
    assert "127.0.0.1:9090/health/ready" in worker_check


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    """Prometheus and Grafana get their config, alerts and dashboard from deploy/."""
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_FILE.parent / source).exists(), f"{name}: {source}"


def test_environment_names_are_the_settings_names(services: dict[str, dict[str, Any]]) -> None:
    taskq = _taskq_services(services)
    allowed = settings_variables() | set(TASKQ_PROCESS_EXTRA_ENV)
    for name, service in services.items():
        names = set(service.get("environment", {}))
        if name in taskq:
            assert names - allowed == set(), f"{name} sets variables the settings do not read"
        else:
            unknown = {
                variable
                for variable in names - set(THIRD_PARTY_ENV)
                if not variable.startswith(tuple(THIRD_PARTY_ENV_PREFIXES))
            }
            assert unknown == set(), f"{name}: variables with no stated reason"


def test_configuration_parses(services: dict[str, dict[str, Any]]) -> None:
    """Values parse as the processes parse them; workers stop within compose's grace."""
    for name, service in _taskq_services(services).items():
        settings = Settings.from_env({k: str(v) for k, v in service["environment"].items()})
        assert settings.egress_block_private, f"{name}: the API and workers refuse private targets"
        if name == "worker":
            grace = parse_duration(service["stop_grace_period"])
            assert grace > settings.shutdown_grace_period
        if name == "api":
            assert service["ports"] == [f"{settings.port}:{settings.port}"]
    assert "postgres:5432" in services["api"]["environment"]["POSTGRES_DSN"]
