"""Regenerate crds/*.json from the cloudcoil model packages (see README.md beside this).

Not a test and not run in CI: it needs packages that are not test dependencies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cloudcoil.models.keda.v1alpha1 import (  # type: ignore[import-not-found]
    ScaledObject,
    TriggerAuthentication,
)
from cloudcoil.models.prometheus_operator.v1 import (  # type: ignore[import-not-found]
    PodMonitor,
    ServiceMonitor,
)

MODELS = {
    "keda.sh_v1alpha1_scaledobject": ScaledObject,
    "keda.sh_v1alpha1_triggerauthentication": TriggerAuthentication,
    "monitoring.coreos.com_v1_servicemonitor": ServiceMonitor,
    "monitoring.coreos.com_v1_podmonitor": PodMonitor,
}


def close(node: Any) -> None:
    """Close every object that lists its properties, as a CRD structural schema is."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            close(value)
    elif isinstance(node, list):
        for value in node:
            close(value)


def main(out: Path) -> None:
    for name, model in MODELS.items():
        schema = model.model_json_schema(by_alias=True)
        close(schema)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        with (out / f"{name}.json").open("w", encoding="utf-8") as handle:
            json.dump(schema, handle, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
