"""A real Prometheus for tests, and the PromQL the dashboard and the alert rules contain.

The binaries come from Debian's `prometheus` package (.ci/run installs it);
`binaries()` says why they are missing so the test can skip with that reason.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.processes import free_port, stop
from tests.support.target import wait_until

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "taskq-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"

# What Grafana would put in place of its variables, for a Prometheus scraping every second.
GRAFANA_VARIABLES = {
    "$__rate_interval": "15s",
    "$__interval": "5s",
    "$__range": "5m",
    "${task_type}": ".*",
    "$task_type": ".*",
}
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
     "bool", "offset", "inf", "nan"}
)  # fmt: skip
_LABEL_VALUES = re.compile(r"^label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)$")


@dataclass(frozen=True)
class Binaries:
    prometheus: Path
    promtool: Path


def binaries() -> Binaries | str:
    """The two binaries, or the reason they cannot be used."""
    found = {name: shutil.which(name) for name in ("prometheus", "promtool")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        return (
            f"{' and '.join(missing)} not on PATH: install Debian's `prometheus` package "
            "(apt-get install --no-install-recommends prometheus; .ci/run does)"
        )
    return Binaries(Path(str(found["prometheus"])), Path(str(found["promtool"])))


@contextmanager
def running_prometheus(
    binary: Path, workdir: Path, scrape: dict[str, str], *, rules: Path | None = None
) -> Iterator[httpx.Client]:
    """Prometheus on 127.0.0.1 scraping each `job: host:port` every second; a client for its API."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)] if rules else [],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [address]}]}
            for job, address in scrape.items()
        ],
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            def ready() -> bool:
                assert process.poll() is None, log.read_text()
                try:
                    return client.get("/-/ready").status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(ready, timeout=30, interval=0.1)
            yield client
    finally:
        stop(process)


def dashboard_expressions(dashboard: Path = DASHBOARD) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and template variable query of the dashboard."""
    document = json.loads(dashboard.read_text())
    found: list[tuple[str, str]] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            title = node.get("title", where)
            if isinstance(node.get("expr"), str):
                found.append((f"panel {title!r} target {node.get('refId')}", node["expr"]))
            for key, value in node.items():
                if key != "templating":
                    walk(value, title)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(document.get("panels", []), "dashboard")
    for variable in document.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        found.append((f"variable ${variable['name']}", variable_query_as_promql(text)))
    return found


def variable_query_as_promql(query: str) -> str:
    """Grafana's `label_values(selector, label)` as the PromQL Grafana would run for it."""
    if matched := _LABEL_VALUES.match(query.strip()):
        selector, label = matched.groups()
        return f"group by ({label}) ({selector})"
    if query.startswith("query_result(") and query.endswith(")"):
        return query[len("query_result(") : -1]
    raise AssertionError(f"template variable query the test cannot translate: {query}")


def alert_expressions(alerts: Path = ALERTS) -> list[tuple[str, str]]:
    rules = yaml.safe_load(alerts.read_text())
    return [
        (f"rule {rule.get('alert') or rule.get('record')}", str(rule["expr"]))
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def with_grafana_variables(expression: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    assert "$" not in expression, f"unsubstituted Grafana variable in {expression}"
    return expression


def metric_names(expression: str) -> set[str]:
    """Names of the metrics an expression selects (functions, keywords and labels left out)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expression)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for token in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        before = text[token.start() - 1] if token.start() else " "
        after = text[token.end() :].lstrip()
        if before.isdigit() or before == "." or after.startswith("("):
            continue  # a number's exponent or unit, or a function call
        if token.group().lower() not in _KEYWORDS:
            names.add(token.group())
    return names
