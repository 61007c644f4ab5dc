"""The Helm chart (deploy/helm/bsante), checked offline: helm lint and helm template over the
values matrix of ci/, Kubernetes schemas (kubernetes-validate), and the rules a hosting operator
relies on (restricted pods, probes, resources, topics, policies, no secret values)."""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bsante.contracts import helm_values
from bsante.contracts.manifest import load, parse
from bsante.dmp_connector.settings import DmpConnectorSettings
from bsante.documents.settings import DocumentsSettings
from bsante.sla_monitor.settings import SlaMonitorSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import helm_chart  # noqa: E402

CASES = {case.name: case for case in helm_chart.CASES}
CRD_KINDS = {"KafkaTopic", "ServiceMonitor", "PrometheusRule"}


@cache
def rendered(name: str, *extra: str) -> list[dict[str, Any]]:
    text = helm_chart.render(CASES[name], *extra)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def by_name(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in of_kind(docs, kind)}


def deployed_names() -> list[str]:
    return [e.name for e in helm_values.deployed(load())]


@pytest.mark.parametrize("name", CASES)
def test_lint_passes_for_every_values_file(name: str) -> None:
    case = CASES[name]
    args = ["lint", str(helm_chart.CHART), "--strict", "-f", str(case.values)]
    args += ["--kube-version", helm_chart.KUBE_VERSION]
    done = helm_chart.run_helm(*args)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", CASES)
def test_every_object_matches_the_kubernetes_schemas(name: str) -> None:
    checked = 0
    for doc in rendered(name):
        if doc["kind"] in CRD_KINDS:
            continue  # no bundled schema: checked by their own tests below
        kubernetes_validate.validate(doc, helm_chart.KUBE_VERSION, strict=True)
        checked += 1
    assert checked > 20


def test_a_bad_object_is_refused_by_the_validator() -> None:
    """The validator does reject: the schema check above is not vacuous."""
    deployment = json.loads(
        json.dumps(by_name(rendered("defaults"), "Deployment")["bsante-patient"])
    )
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    deployment["spec"]["replicass"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, helm_chart.KUBE_VERSION, strict=True)


@pytest.mark.parametrize("name", CASES)
def test_every_manifest_service_is_deployed_and_only_those(name: str) -> None:
    deployments = by_name(rendered(name), "Deployment")
    services = {n for n in deployments if not n.endswith("-simulator")}
    assert services == {f"bsante-{s}" for s in deployed_names()}


def test_workstation_agents_are_not_deployed() -> None:
    text = (helm_chart.ROOT / "contracts/src/bsante/contracts/services.toml").read_text()
    text += (
        '\n[services.card-agent]\nkind = "workstation-agent"\nmodule = "bsante.card_agent"\n'
        'folder = "services/card-agent"\nport = 8188\n'
    )
    manifest = parse(text)
    assert "card-agent" not in [e.name for e in helm_values.deployed(manifest)]
    assert "card-agent" not in helm_values.services_block(manifest)
    assert "card-agent" not in helm_values.manifest_json(manifest)


def _pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in of_kind(docs, "Deployment")
    ]


@pytest.mark.parametrize("name", CASES)
def test_every_pod_meets_the_restricted_profile(name: str) -> None:
    for deployment, pod in _pod_specs(rendered(name)):
        assert pod["automountServiceAccountToken"] is False, deployment
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, deployment
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, deployment
        assert "hostNetwork" not in pod and "hostPID" not in pod, deployment
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, deployment
            assert sc["capabilities"]["drop"] == ["ALL"], deployment
            assert "add" not in sc["capabilities"], deployment
            assert sc["readOnlyRootFilesystem"] is True, deployment
            assert sc["runAsNonRoot"] is True, deployment
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", deployment
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], deployment
    for account in of_kind(rendered(name), "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", CASES)
def test_every_deployment_has_probes_resources_and_a_config_checksum(name: str) -> None:
    for deployment in of_kind(rendered(name), "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                assert probe in container, (deployment["metadata"]["name"], probe)
            resources = container["resources"]
            assert resources["requests"]["cpu"] and resources["requests"]["memory"]
            assert resources["limits"]["memory"]
        if deployment["metadata"]["name"].endswith("-simulator"):
            continue
        container = pod["containers"][0]
        assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert len(annotations["checksum/config"]) == 64
        assert pod["topologySpreadConstraints"]
        # Long enough for the drain period plus the requests in flight.
        assert pod["terminationGracePeriodSeconds"] > 5 + 15


def test_a_configuration_change_rolls_only_that_service() -> None:
    before = by_name(rendered("defaults"), "Deployment")
    after = by_name(
        rendered("defaults", "--set", "services.patient.env.INSI_TIMEOUT=7"), "Deployment"
    )

    def checksum(d: dict[str, Any]) -> str:
        return str(d["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    changed = {n for n in before if checksum(before[n]) != checksum(after[n])}
    assert changed == {"bsante-patient"}
    config = by_name(
        rendered("defaults", "--set", "services.patient.env.INSI_TIMEOUT=7"), "ConfigMap"
    )
    assert config["bsante-patient"]["data"]["PATIENT_INSI_TIMEOUT"] == "7"


@pytest.mark.parametrize("name", CASES)
def test_every_manifest_topic_has_a_kafka_topic_and_a_dead_letter_topic(name: str) -> None:
    topics = by_name(rendered(name), "KafkaTopic")
    for topic in load().topics:
        for expected in (topic, topic + ".dlq"):
            assert expected in topics, expected
            declared = topics[expected]
            assert declared["apiVersion"] == "kafka.strimzi.io/v1"
            assert declared["spec"]["topicName"] == expected
            assert declared["metadata"]["labels"]["strimzi.io/cluster"]
            assert declared["spec"]["partitions"] >= 1 and declared["spec"]["replicas"] >= 1
    assert len(topics) == 2 * len(load().topics)


def test_the_topic_api_version_is_a_value() -> None:
    docs = rendered("defaults", "--set", "kafka.topics.apiVersion=kafka.strimzi.io/v1beta2")
    assert {d["apiVersion"] for d in of_kind(docs, "KafkaTopic")} == {"kafka.strimzi.io/v1beta2"}


@pytest.mark.parametrize("name", CASES)
def test_no_secret_is_rendered_and_secrets_are_only_referenced(name: str) -> None:
    docs = rendered(name)
    assert of_kind(docs, "Secret") == []
    for config in of_kind(docs, "ConfigMap"):
        for key, value in config.get("data", {}).items():
            lowered = key.lower()
            assert not any(w in lowered for w in ("password", "_secret\b", "private")), key
            assert "mongodb://" not in value and "BEGIN PRIVATE KEY" not in value, key
    identity = by_name(docs, "Deployment")["bsante-identity"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in identity["volumes"]}
    assert volumes["signing-keys"]["secret"]["secretName"] == "bsante-token-signing"
    env = {e["name"]: e for e in identity["containers"][0]["env"]}
    assert env["IDENTITY_STORE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "bsante-mongodb"


@pytest.mark.parametrize("name", CASES)
def test_a_default_deny_policy_and_one_policy_per_service(name: str) -> None:
    policies = by_name(rendered(name), "NetworkPolicy")
    deny = policies["bsante-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny and "egress" not in deny
    for service in deployed_names():
        assert f"bsante-{service}" in policies
    gateway = policies["bsante-gateway"]["spec"]
    assert "namespaceSelector" in gateway["ingress"][0]["from"][0]
    patient = policies["bsante-patient"]["spec"]
    sources = [p["podSelector"]["matchLabels"] for p in patient["ingress"][0]["from"]]
    assert {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": "bsante"} in sources


def test_connectors_reach_only_the_external_endpoints_they_are_given() -> None:
    def egress_cidrs(docs: list[dict[str, Any]]) -> list[str]:
        patient = by_name(docs, "NetworkPolicy")["bsante-patient"]["spec"]
        return [
            b["ipBlock"]["cidr"] for rule in patient["egress"] for b in rule["to"] if "ipBlock" in b
        ]

    # By default only the MongoDB network: INSi is blocked until its addresses are given.
    assert egress_cidrs(rendered("defaults")) == ["10.0.0.0/8"]
    assert "203.0.113.10/32" in egress_cidrs(rendered("production"))


def test_autoscaling_and_disruption_budgets_follow_the_replicas() -> None:
    production = rendered("production")
    hpas = by_name(production, "HorizontalPodAutoscaler")
    assert set(hpas) == {f"bsante-{s}" for s in deployed_names()} - {"bsante-sla-monitor"}
    assert hpas["bsante-patient"]["apiVersion"] == "autoscaling/v2"
    assert "replicas" not in by_name(production, "Deployment")["bsante-patient"]["spec"]
    assert "bsante-sla-monitor" in by_name(production, "PodDisruptionBudget")
    minimal = rendered("minimal")
    assert of_kind(minimal, "HorizontalPodAutoscaler") == []
    assert of_kind(minimal, "PodDisruptionBudget") == []


def test_monitoring_objects_need_the_operator_api_and_a_value() -> None:
    with_api = rendered("monitoring")
    assert len(of_kind(with_api, "ServiceMonitor")) == 1
    rule = of_kind(with_api, "PrometheusRule")[0]
    alerts = {r.get("alert") for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "BsanteApiErrorBudgetFastBurn" in alerts
    # The same values on a cluster without the Prometheus Operator: nothing it cannot apply.
    without = rendered("defaults", "-f", str(CASES["monitoring"].values))
    assert of_kind(without, "ServiceMonitor") == [] and of_kind(without, "PrometheusRule") == []
    # And the operator's API alone does not turn them on.
    assert (
        of_kind(rendered("defaults", "--api-versions", helm_chart.MONITORING_API), "ServiceMonitor")
        == []
    )


def test_grafana_dashboards_are_labelled_config_maps() -> None:
    dashboards = [
        c
        for c in of_kind(rendered("defaults"), "ConfigMap")
        if c["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert dashboards
    for config in dashboards:
        for text in config["data"].values():
            dashboard = json.loads(text)
            assert dashboard["uid"]
            names = [v["name"] for v in dashboard["templating"]["list"]]
            assert "datasource" in names


def test_demo_seeding_and_simulators_are_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = rendered("defaults")
    configs = by_name(docs, "ConfigMap")
    assert configs["bsante-identity"]["data"]["IDENTITY_SEED_DEMO"] == "false"
    # documents seeds its demo templates unless told not to (its settings default to true).
    assert configs["bsante-documents"]["data"]["DOCUMENTS_SEED_DEMO"] == "false"
    assert DocumentsSettings().seed_demo is True
    _settings_from(configs["bsante-documents"], "DOCUMENTS_", monkeypatch)
    assert DocumentsSettings().seed_demo is False, "the key the chart sets is the setting's"
    assert not [
        d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-simulator")
    ]
    demo = by_name(rendered("monitoring"), "ConfigMap")
    assert demo["bsante-identity"]["data"]["IDENTITY_SEED_DEMO"] == "true"
    assert demo["bsante-documents"]["data"]["DOCUMENTS_SEED_DEMO"] == "true"


def _settings_from(config: dict[str, Any], prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's environment as the pod gets it from its ConfigMap."""
    for key, value in config["data"].items():
        if key.startswith(prefix):
            monkeypatch.setenv(key, value)


def _container(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    pod = by_name(docs, "Deployment")[name]["spec"]["template"]["spec"]
    return {"pod": pod, "container": pod["containers"][0]}


def _peer_selectors(rule: dict[str, Any], key: str) -> list[str]:
    return [
        p["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in rule.get(key, [])
        if "podSelector" in p and "namespaceSelector" not in p
    ]


def test_the_sla_monitor_probes_the_release_services_and_may_reach_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = rendered("defaults")
    config = by_name(docs, "ConfigMap")["bsante-sla-monitor"]
    _settings_from(config, "SLA_MONITOR_", monkeypatch)
    template = SlaMonitorSettings().probe_url_template
    services = by_name(docs, "Service")
    for name in deployed_names():
        # The URL the monitor builds names the chart's Service, on its port.
        url = template.format(service=name)
        assert (
            url == f"http://bsante-{name}:{services[f'bsante-{name}']['spec']['ports'][0]['port']}"
        )
    renamed = by_name(rendered("defaults", "--set", "fullnameOverride=suite"), "ConfigMap")
    assert renamed["suite-sla-monitor"]["data"]["SLA_MONITOR_PROBE_URL_TEMPLATE"] == (
        "http://suite-{service}:8080"
    )

    policies = by_name(docs, "NetworkPolicy")
    monitor = policies["bsante-sla-monitor"]["spec"]
    reached = {n for rule in monitor["egress"] for n in _peer_selectors(rule, "to")}
    assert reached >= set(deployed_names()) - {"sla-monitor"}
    for name in set(deployed_names()) - {"sla-monitor"}:
        ingress = policies[f"bsante-{name}"]["spec"]["ingress"]
        sources = {n for rule in ingress for n in _peer_selectors(rule, "from")}
        assert "sla-monitor" in sources, name
    # Only the monitor reaches everything: forms still reaches only its peers and identity.
    forms = policies["bsante-forms"]["spec"]
    assert {n for rule in forms["egress"] for n in _peer_selectors(rule, "to")} == {
        "patient",
        "identity",
    }


def test_the_synthetic_account_comes_from_a_secret_and_is_off_when_not_set() -> None:
    def env(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        container = _container(docs, "bsante-sla-monitor")["container"]
        return {e["name"]: e for e in container["env"]}

    assert not any("SYNTHETIC" in name for name in env(rendered("defaults")))
    production = env(rendered("production"))
    for name, key in (("USERNAME", "username"), ("PASSWORD", "password")):
        ref = production[f"SLA_MONITOR_SYNTHETIC_{name}"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "bsante-sla-synthetic", "key": key}
    config = by_name(rendered("production"), "ConfigMap")["bsante-sla-monitor"]["data"]
    assert not any("SYNTHETIC" in key for key in config)


def test_certificates_are_mounted_read_only_and_named_by_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = rendered("defaults")
    configs = by_name(docs, "ConfigMap")
    for service, secret, path in (
        ("dmp-connector", "bsante-dmp-certificates", "/etc/bsante/dmp"),
        ("documents", "bsante-documents-cachets", "/etc/bsante/cachets"),
    ):
        parts = _container(docs, f"bsante-{service}")
        volumes = {v["name"]: v for v in parts["pod"]["volumes"]}
        assert volumes["certificates"]["secret"]["secretName"] == secret
        mount = next(m for m in parts["container"]["volumeMounts"] if m["name"] == "certificates")
        assert mount == {"name": "certificates", "mountPath": path, "readOnly": True}

    _settings_from(configs["bsante-dmp-connector"], "DMP_CONNECTOR_", monkeypatch)
    dmp = DmpConnectorSettings()
    assert dmp.dmp_tls_cert_file == "/etc/bsante/dmp/auth-cli.crt"
    assert dmp.dmp_tls_key_file == "/etc/bsante/dmp/auth-cli.key"
    assert dmp.signing_cert_file == "/etc/bsante/dmp/vihf.crt"
    assert dmp.signing_key_file == "/etc/bsante/dmp/vihf.key"
    _settings_from(configs["bsante-documents"], "DOCUMENTS_", monkeypatch)
    documents = DocumentsSettings()
    assert documents.signing_key_file == "/etc/bsante/cachets/{finess}.key"
    assert documents.signing_cert_file == "/etc/bsante/cachets/{finess}.crt"
    assert documents.signing_trust_anchor_files == ["/etc/bsante/cachets/ca.crt"]

    # Values add a file beside the defaults, and mount for another service (PSC's secret).
    production = rendered("production")
    data = by_name(production, "ConfigMap")
    assert data["bsante-dmp-connector"]["data"]["DMP_CONNECTOR_DMP_CA_FILE"] == (
        "/etc/bsante/dmp/dmp-ca.crt"
    )
    assert data["bsante-dmp-connector"]["data"]["DMP_CONNECTOR_SIGNING_KEY_FILE"] == (
        "/etc/bsante/dmp/vihf.key"
    )
    assert data["bsante-identity"]["data"]["IDENTITY_PSC_CLIENT_SECRET_FILE"] == (
        "/etc/bsante/psc/client-secret"
    )
    identity = {v["name"]: v for v in _container(production, "bsante-identity")["pod"]["volumes"]}
    assert identity["certificates"]["secret"]["secretName"] == "bsante-psc"

    # An empty existingSecret mounts nothing and names no file.
    off = rendered("defaults", "--set", "certificates.documents.existingSecret=")
    parts = _container(off, "bsante-documents")
    assert "certificates" not in {v["name"] for v in parts["pod"]["volumes"]}
    off_config = by_name(off, "ConfigMap")["bsante-documents"]["data"]
    assert not any(k.startswith("DOCUMENTS_SIGNING") for k in off_config)


@pytest.mark.parametrize(
    ("override", "misspelt"),
    [
        ("certificates.documents.filez.X=a", "filez"),
        ("certificates.nope.existingSecret=x", "nope"),
        ("slaMonitor.synthetic.secret=x", "secret"),
    ],
)
def test_the_schema_rejects_misspelt_certificate_and_synthetic_keys(
    override: str, misspelt: str
) -> None:
    done = helm_chart.run_helm(*helm_chart.template_args(CASES["defaults"], "--set", override))
    assert done.returncode != 0
    assert f"additional property {misspelt} is not allowed" in done.stderr.lower(), done.stderr


def test_notes_list_the_secrets_with_their_keys() -> None:
    notes = helm_chart.notes(CASES["defaults"])
    callers = [e.name for e in helm_values.deployed(load()) if e.calls]
    assert {"forms", "documents", "dmp-connector", "mss-connector"} <= set(callers)
    assert "bsante-service-clients: one key per calling service, its client secret: " + " ".join(
        callers
    ) in " ".join(notes.split())
    assert "bsante-dmp-certificates (dmp-connector, mounted at /etc/bsante/dmp): keys" in notes
    for key in ("auth-cli.crt", "auth-cli.key", "vihf.crt", "vihf.key"):
        assert key in notes
    assert "bsante-documents-cachets (documents, mounted at /etc/bsante/cachets)" in notes
    assert "{finess}.key" in notes and "ca.crt" in notes
    assert "slaMonitor.synthetic.existingSecret" in notes
    assert "PSC_CLIENT_SECRET_FILE" in notes
    production = helm_chart.notes(CASES["production"])
    assert "bsante-sla-synthetic (keys username, password)" in production
    assert "bsante-psc (identity, mounted at /etc/bsante/psc): keys client-secret" in production
    assert "PSC_CLIENT_SECRET_FILE" not in production  # PSC is configured there


def test_the_ingress_serves_the_gateway_over_tls() -> None:
    ingress = of_kind(rendered("defaults"), "Ingress")[0]["spec"]
    assert ingress["tls"][0]["secretName"] == "bsante-tls"
    backend = ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "bsante-gateway"
    assert of_kind(rendered("minimal"), "Ingress") == []


@pytest.mark.parametrize(
    ("override", "misspelt"),
    [
        ("defaults.replicass=2", "replicass"),
        ("services.patient.replicass=2", "replicass"),
        ("kafka.topicz.create=true", "topicz"),
        ("services.nope.enabled=true", "nope"),
    ],
)
def test_the_values_schema_rejects_a_misspelt_key(override: str, misspelt: str) -> None:
    done = helm_chart.run_helm(*helm_chart.template_args(CASES["defaults"], "--set", override))
    assert done.returncode != 0
    assert f"additional property {misspelt} is not allowed" in done.stderr.lower(), done.stderr


def test_the_gateway_routes_to_every_deployed_service() -> None:
    data = by_name(rendered("defaults"), "ConfigMap")["bsante-gateway"]["data"]
    routes = json.loads(data["GATEWAY_SERVICES"])
    assert set(routes) == {e.name for e in load().of_kind("service")}
    assert routes["patient"] == "http://bsante-patient:8080"
    without = by_name(rendered("defaults", "--set", "services.forms.enabled=false"), "ConfigMap")
    assert "forms" not in json.loads(without["bsante-gateway"]["data"]["GATEWAY_SERVICES"])


def test_golden_examples_have_not_drifted() -> None:
    for case in helm_chart.CASES:
        assert case.example.is_file(), (
            f"missing {case.example.name}: python tools/helm_chart.py examples"
        )
        assert case.example.read_text() == helm_chart.render(case), (
            f"{case.example.name} drifted from the chart: run `python tools/helm_chart.py examples`"
        )


def test_the_gateway_streams_events_with_one_consumer_group_per_replica() -> None:
    docs = rendered("defaults")
    gateway = by_name(docs, "Deployment")["bsante-gateway"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in gateway["containers"][0]["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["GATEWAY_STREAM_GROUP"]["value"] == "gateway-stream-$(POD_NAME)"
    assert "GATEWAY_STORE_URL" not in env
    config = by_name(docs, "ConfigMap")["bsante-gateway"]["data"]
    assert config["GATEWAY_BUS_URL"].startswith("kafka://")
    policy = by_name(docs, "NetworkPolicy")["bsante-gateway"]["spec"]
    kafka_ports = {p["port"] for rule in policy["egress"] for p in rule.get("ports", [])}
    assert {9092, 9093} <= kafka_ports
