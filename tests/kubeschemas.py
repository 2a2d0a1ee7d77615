"""Kubernetes and operator schemas for kubeconform, offline.

Kubernetes' own: the JSON schemas that the kubernetes-validate package ships. The operators': their
CRDs (CloudNativePG, Prometheus Operator and KEDA from their Go modules, Strimzi from tests/crds)
converted to JSON schemas the way kubeconform's openapi2jsonschema.py does it: each served version's
openAPIV3Schema, objects with declared properties closed (additionalProperties false: a misspelt
field fails), int-or-string and nullable spelled in JSON Schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.tools import go_module, go_tool

HELM = ("helm.sh/helm/v4/cmd/helm", "v4.3.2", "helm")
KUBECONFORM = ("github.com/yannh/kubeconform/cmd/kubeconform", "v0.8.0", "kubeconform")

OPERATOR_CRDS = {  # Go module, version, folder of CRDs inside it
    "cloudnative-pg": ("github.com/cloudnative-pg/cloudnative-pg", "v1.28.1", "config/crd/bases"),
    "prometheus-operator": ("github.com/prometheus-operator/prometheus-operator", "v0.85.0",
                            "example/prometheus-operator-crd"),
    "keda": ("github.com/kedacore/keda/v2", "v2.21.0", "config/crd/bases"),
}
STRIMZI_CRDS = Path(__file__).parent / "crds" / "strimzi-1.2.0"


def kubernetes_schemas() -> Path:
    """The folder of kubernetes-validate's strict schemas for its newest Kubernetes version."""
    import kubernetes_validate

    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    return max(root.glob("v*-local-strict"), key=lambda p: tuple(int(x) for x in p.name[1:].split("-")[0].split(".")))


def write_kubernetes_schemas(resources: list[dict], out: Path) -> None:
    """kubeconform's file names (``deployment-apps-v1.json``) for the kinds of ``resources``, each made
    standalone: kubernetes-validate's schemas point into one shared ``/api/_definitions.json``, which
    kubeconform cannot follow, so the definitions each kind reaches are copied into it."""
    source = kubernetes_schemas()
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    for api_version, kind in {(r["apiVersion"], r["kind"]) for r in resources}:
        group, _, version = api_version.rpartition("/")
        name = f"{kind.lower()}{'-' + group.split('.')[0].lower() if group else ''}-{version.lower()}.json"
        if not (source / name).exists():
            continue  # not a Kubernetes kind: the CRD schemas answer for it
        schema = json.loads((source / name).read_text().replace("/api/_definitions.json#", "#"))
        reached: dict[str, Any] = {}
        pending = _references(schema)
        while pending:
            key = pending.pop()
            if key not in reached:
                reached[key] = definitions[key]
                pending |= _references(definitions[key])
        out.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(json.dumps({**schema, "$defs": json.loads(
            json.dumps(reached).replace("/api/_definitions.json#", "#"))}))


def _references(node: Any) -> set[str]:
    text = json.dumps(node)
    return {part.split('"', 1)[0] for part in text.split('_definitions.json#/$defs/')[1:]} | \
        {part.split('"', 1)[0] for part in text.split('"#/$defs/')[1:]}


class _CrdLoader(yaml.SafeLoader):
    """PyYAML resolves a plain ``=`` (an enum value in the Prometheus Operator's CRDs) to YAML 1.1's
    'value' tag, which it cannot construct: it is the string "="."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def crd_files() -> list[Path]:
    files = sorted(STRIMZI_CRDS.glob("*.yaml"))
    for module, version, folder in OPERATOR_CRDS.values():
        files += sorted((go_module(module, version) / folder).glob("*.yaml"))
    return files


def write_crd_schemas(crds: list[Path], out: Path) -> list[str]:
    """One JSON schema per CRD version in ``out/<group>/<kind>_<version>.json``; returns the kinds."""
    kinds = []
    for path in crds:
        for crd in yaml.load_all(path.read_text(), Loader=_CrdLoader):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = closed(json_schema(version["schema"]["openAPIV3Schema"]), root=True)
                target = out / group / f"{kind.lower()}_{version['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(schema))
                kinds.append(f"{group}/{version['name']}/{kind}")
    return kinds


def json_schema(node: Any) -> Any:
    """OpenAPI v3 extensions as JSON Schema: int-or-string, nullable."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: json_schema(value) for key, value in node.items()}
    if converted.get("x-kubernetes-int-or-string") or converted.get("format") == "int-or-string":
        converted.pop("type", None)
        converted.pop("format", None)
        converted["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if converted.pop("nullable", False) and isinstance(converted.get("type"), str):
        converted["type"] = [converted["type"], "null"]
    return converted


def closed(node: Any, *, root: bool = False) -> Any:
    """openapi2jsonschema's additional_properties: objects listing their properties accept no others,
    unless they preserve unknown fields (the root stays open: apiVersion, kind, metadata, status)."""
    if isinstance(node, list):
        return [closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: closed(value) if key not in ("enum", "default", "example") else value for key, value in node.items()}
    if "properties" in result and not root and "additionalProperties" not in result \
            and not result.get("x-kubernetes-preserve-unknown-fields"):
        result["additionalProperties"] = False
    return result


def prepare() -> None:
    """Build Helm and kubeconform and fetch the operators' modules ahead of the tests (.ci/run does: a
    first build takes minutes on two cores)."""
    for tool in (HELM, KUBECONFORM):
        print(go_tool(*tool))
    print(len(crd_files()), "CRD files")


if __name__ == "__main__":
    prepare()
