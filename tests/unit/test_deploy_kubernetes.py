"""The Kubernetes manifests: valid against the Kubernetes schemas, probes and resources on
every Deployment, and the topic resources generated from the registry are up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from deploy import kubernetes
from shared.topics import all_topics

K8S = Path(__file__).parents[2] / "deploy" / "k8s"
CORE = ["namespace.yaml", "config.yaml", "services.yaml"]


def test_manifests_validate_against_the_kubernetes_schemas():
    validated = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", *CORE],
        cwd=K8S, capture_output=True, text=True)
    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_every_deployment_has_probes_resources_and_a_graceful_stop():
    deployments = [d for d in yaml.safe_load_all((K8S / "services.yaml").read_text()) if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {"content", "distribution", "tracking", "reporting", "web"}
    for deployment in deployments:
        spec = deployment["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        assert spec["terminationGracePeriodSeconds"] >= 30


def test_topic_resources_are_generated_from_the_registry_and_current():
    assert (K8S / "topics.yaml").read_text() == kubernetes.render(), "run `python -m deploy.kubernetes`"
    resources = list(yaml.safe_load_all((K8S / "topics.yaml").read_text()))
    assert [r["spec"]["topicName"] for r in resources] == [t.name for t in all_topics()]
    kpis = next(r for r in resources if r["spec"]["topicName"] == "reporting.kpis.v1")
    assert kpis["spec"]["config"]["cleanup.policy"] == "compact"
