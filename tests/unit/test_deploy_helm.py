"""The Helm chart, checked with the tools ops teams use: ``helm lint`` and ``helm template`` for each
values file (defaults, external Kafka/PostgreSQL, high availability), the output validated by
kubeconform against the Kubernetes schemas and the operators' own CRD schemas (Strimzi,
CloudNativePG, Prometheus Operator, KEDA), offline. Helm and kubeconform are built from the Go
module proxy into the cache on first use (tests/tools.py); no tool here means a failure under CI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from deploy import kubernetes
from shared.topics import all_topics
from tests.kubeschemas import HELM, KUBECONFORM, crd_files, write_crd_schemas, write_kubernetes_schemas
from tests.tools import go_tool

CHART = Path(__file__).parents[2] / "deploy" / "helm" / "portevoix"
VALUES = {"defaults": None, "external": CHART / "ci" / "external-values.yaml", "ha": CHART / "ci" / "ha-values.yaml"}
SERVICES = {"content", "distribution", "tracking", "reporting", "web"}


@pytest.fixture(scope="module")
def helm() -> Path:
    return go_tool(*HELM)


@pytest.fixture(scope="module")
def kubeconform() -> Path:
    return go_tool(*KUBECONFORM)


@pytest.fixture(scope="module")
def crd_schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crd-schemas")
    kinds = write_crd_schemas(crd_files(), out)
    assert {"kafka.strimzi.io/v1/KafkaUser", "postgresql.cnpg.io/v1/Cluster", "monitoring.coreos.com/v1/PrometheusRule",
            "keda.sh/v1alpha1/ScaledObject"} <= set(kinds)
    return out


def render(helm: Path, values: Path | None, *extra: str) -> str:
    command = [str(helm), "template", "portevoix", str(CHART), "--namespace", "portevoix", *extra]
    if values:
        command += ["--values", str(values)]
    rendered = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    return rendered.stdout


def resources(helm: Path, values: Path | None = None, *extra: str) -> list[dict]:
    return [r for r in yaml.safe_load_all(render(helm, values, *extra)) if r]


def find(items: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [r for r in items if r["kind"] == kind and (name is None or r["metadata"]["name"] == name)]


@pytest.mark.parametrize("values", VALUES)
def test_helm_lint(helm: Path, values: str):
    command = [str(helm), "lint", "--strict", str(CHART)]
    command += ["--values", str(VALUES[values])] if VALUES[values] else []
    linted = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.parametrize("values", VALUES)
def test_rendered_chart_validates_against_kubernetes_and_operator_schemas(
        helm: Path, kubeconform: Path, crd_schemas: Path, values: str, tmp_path: Path):
    manifests = render(helm, VALUES[values])
    write_kubernetes_schemas([r for r in yaml.safe_load_all(manifests) if r], tmp_path)
    validated = subprocess.run(
        [str(kubeconform), "-strict", "-summary", "-output", "text",
         "-schema-location", str(tmp_path / "{{ .ResourceKind }}{{ .KindSuffix }}.json"),
         "-schema-location", str(crd_schemas) + "/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json",
         "-"], check=False, input=manifests, capture_output=True, text=True, timeout=300)
    # Without -ignore-missing-schemas, a kind without a schema fails too: everything was checked.
    assert validated.returncode == 0, validated.stdout + validated.stderr
    kinds = {r["kind"] for r in yaml.safe_load_all(manifests) if r}
    expected = {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "NetworkPolicy", "Ingress", "Job"}
    expected |= {"ScaledObject", "TriggerAuthentication"} if values == "ha" else set()
    expected |= set() if values == "external" else {
        "Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster", "Database", "ServiceMonitor", "PrometheusRule"}
    assert expected <= kinds, expected - kinds


def test_generated_chart_files_are_current():
    stale = [path for path, text in kubernetes.generated().items() if not path.exists() or path.read_text() != text]
    assert not stale, f"run `python -m deploy.kubernetes`: {stale}"


def test_topics_are_the_registry(helm: Path):
    topics = find(resources(helm), "KafkaTopic")
    assert [t["spec"]["topicName"] for t in topics] == [t.name for t in all_topics()]
    kpis = next(t for t in topics if t["spec"]["topicName"] == "reporting.kpis.v1")
    assert kpis["spec"]["config"]["cleanup.policy"] == "compact"
    assert all(t["spec"]["replicas"] == 3 and t["spec"]["config"]["min.insync.replicas"] == "2" for t in topics)


def acl(user: dict) -> set[tuple[str, str, str, str]]:
    rules = user["spec"].get("authorization", {}).get("acls", [])
    return {(r["resource"]["type"], r["resource"].get("name", ""), r["resource"].get("patternType", ""), op)
            for r in rules for op in r["operations"]}


def test_each_kafka_user_may_do_exactly_what_its_service_uses(helm: Path):
    users = {u["metadata"]["name"]: u for u in find(resources(helm), "KafkaUser")}
    assert set(users) == {f"portevoix-{s}" for s in SERVICES} | {"portevoix-hr-producer", "portevoix-intranet-producer"}
    tracking = acl(users["portevoix-tracking"])
    assert ("topic", "tracking.engagements.v1", "literal", "Write") in tracking
    assert ("topic", "distribution.notifications.v1", "literal", "Read") in tracking
    assert not {a for a in tracking if a[1] == "content.lifecycle.v1"}, "tracking neither reads nor writes it"
    assert ("group", "tracking.", "prefix", "Read") in tracking
    assert acl(users["portevoix-hr-producer"]) == {("topic", "hr.employees.v1", "literal", "Write"),
                                                   ("topic", "hr.employees.v1", "literal", "Describe")}
    # the web front uses no topic; its idempotent producer still asks for a producer id
    assert acl(users["portevoix-web"]) == {("cluster", "", "", "IdempotentWrite")}
    for service in SERVICES - {"web"}:
        writes = {a[1] for a in acl(users[f"portevoix-{service}"]) if a[3] == "Write"}
        assert writes == set(kubernetes.service_access(service)["writes"])


def test_every_deployment_has_probes_resources_a_graceful_stop_and_its_own_credentials(helm: Path):
    items = resources(helm)
    deployments = find(items, "Deployment")
    assert {d["metadata"]["labels"]["app.kubernetes.io/name"] for d in deployments} == SERVICES
    for deployment in deployments:
        name = deployment["metadata"]["labels"]["app.kubernetes.io/name"]
        spec = deployment["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        assert spec["terminationGracePeriodSeconds"] >= 30
        env = {e["name"]: e for e in container["env"]}
        assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"portevoix-pg-{name}"
        assert env["PORTEVOIX_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"portevoix-{name}"
    assert len(find(items, "PodDisruptionBudget")) == len(SERVICES)
    roles = find(items, "Cluster")[0]["spec"]["managed"]["roles"]
    assert {r["name"] for r in roles} == SERVICES
    schemas = find(items, "Database")[0]["spec"]["schemas"]
    assert all(s["owner"] == s["name"] for s in schemas) and {s["name"] for s in schemas} == SERVICES


def test_network_policies_let_each_service_reach_only_what_it_needs(helm: Path):
    policies = {p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]: p
                for p in find(resources(helm), "NetworkPolicy") if "app.kubernetes.io/name" in p["spec"]["podSelector"]
                ["matchLabels"]}
    assert set(policies) == SERVICES

    def pod_peers(rules: list[dict]) -> set[str]:
        return {peer["podSelector"]["matchLabels"].get("app.kubernetes.io/name", "")
                for rule in rules for peer in rule.get("to", rule.get("from", [])) if "podSelector" in peer} - {""}

    assert pod_peers(policies["web"]["spec"]["egress"]) == SERVICES - {"web"}
    for service in SERVICES - {"web"}:
        assert pod_peers(policies[service]["spec"]["egress"]) == set(), f"{service} calls no other service"
        assert pod_peers(policies[service]["spec"]["ingress"]) == {"web"}
    reporting_from = policies["reporting"]["spec"]["ingress"][0]["from"]
    # reporting is reached by Prometheus, not by the ingress controller
    assert len([peer for peer in reporting_from if "namespaceSelector" in peer]) == 1


def test_ingress_routes_the_front_the_redirector_and_the_webhooks_with_tls(helm: Path):
    ingress = find(resources(helm), "Ingress")[0]["spec"]
    routes = {(rule["host"], path["path"]): path["backend"]["service"]["name"]
              for rule in ingress["rules"] for path in rule["http"]["paths"]}
    assert routes[("portevoix.example.com", "/")] == "portevoix-web"
    assert routes[("go.example.com", "/r/")] == "portevoix-tracking"
    assert routes[("go.example.com", "/v1/webhooks/")] == "portevoix-tracking"
    assert routes[("go.example.com", "/v1/webhooks/intranet/")] == "portevoix-content"
    assert {h for tls in ingress["tls"] for h in tls["hosts"]} == {"portevoix.example.com", "go.example.com"}


def test_migrations_run_once_per_release_before_the_rollout(helm: Path):
    jobs = find(resources(helm), "Job")
    assert {j["spec"]["template"]["spec"]["containers"][0]["command"][-1] for j in jobs} == SERVICES
    assert all(j["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade" for j in jobs)
    external = find(resources(helm, VALUES["external"]), "Job")
    assert all(j["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade" for j in external)


def test_external_values_create_no_kafka_or_postgresql(helm: Path):
    items = resources(helm, VALUES["external"])
    assert not {r["kind"] for r in items} & {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster", "Database"}
    env = {e["name"]: e for e in find(items, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PORTEVOIX_KAFKA_BOOTSTRAP_SERVERS"]["value"].startswith("b-1.kafka.internal.example.com:9096")
    assert env["PORTEVOIX_DATABASE_URL"]["value"].startswith("postgresql://portevoix.postgres.internal.example.com")


def test_alert_rules_are_the_prometheus_rules(helm: Path):
    rule = find(resources(helm), "PrometheusRule")[0]
    assert rule["spec"] == yaml.safe_load(kubernetes.RULES_SOURCE.read_text())


WRITING_CALLS = {"enqueue", "enqueue_records", "enqueue_encoded", "publish_now", "publish_records", "send_records",
                 "send_keyed", "send", "send_batch", "publish"}


def written_topics(service: str) -> set[str]:
    """The registry topics a service's code hands to a call that writes to Kafka (directly or through
    its outbox): ``topics.NOTIFICATIONS``, ``topics.NOTIFICATIONS.dlq.name``..."""
    import ast

    from shared import topics

    found = set()
    for path in (Path(__file__).parents[2] / "services" / service).rglob("*.py"):
        for call in ast.walk(ast.parse(path.read_text())):
            name = getattr(call, "func", None)
            if not isinstance(call, ast.Call) or getattr(name, "attr", getattr(name, "id", None)) not in WRITING_CALLS:
                continue
            for argument in call.args[:2]:
                chain = ast.unparse(argument).split(".")
                if chain[0] == "topics" and len(chain) > 1 and hasattr(topics, chain[1]):
                    topic = getattr(topics, chain[1])
                    found.add(getattr(topic, chain[2]).name if len(chain) > 2 and chain[2] in ("dlq", "retry")
                              else topic.name)
    return found


def test_the_kafka_users_allow_every_write_the_services_code_makes():
    """A write the registry does not know (a new direct send beside the declared publishers) would be
    refused by the cluster's ACLs in production: deploy.kubernetes.DIRECT_WRITES must list it."""
    for service in SERVICES:
        assert written_topics(service) <= set(kubernetes.service_access(service)["writes"]), service
    assert "intranet.content.v1" in written_topics("content")  # the scan sees the direct writes


def test_values_are_checked_against_the_charts_schema(helm: Path):
    for wrong, complaint in [("services.contnt.replicas=2", "additional properties 'contnt'"),
                             ("kafka.external.securityProtocol=TLS", "must be one of"),
                             ("oidc.issuer=http://login.example.com/", "does not match pattern")]:
        refused = subprocess.run([str(helm), "template", "portevoix", str(CHART), "--set", wrong], check=False,
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0 and complaint in refused.stderr, (wrong, refused.stderr)
