"""Checks on the rendered Kubernetes manifests that schema validation and checkov do not make:
the requirements of Berth's own deployment (issue 8), asserted on `kubectl kustomize` output.

check.sh renders deploy/overlays/example to a file and passes it in BERTH_RENDERED_MANIFESTS;
run alone, this test renders it itself with kubectl.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "deploy" / "overlays" / "example"


def render() -> list[dict]:
    rendered = os.environ.get("BERTH_RENDERED_MANIFESTS")
    if rendered:
        text = Path(rendered).read_text()
    else:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            pytest.fail("kubectl not found: install it (tools/infra/check.sh does) to render the overlay")
        text = subprocess.run([kubectl, "kustomize", str(OVERLAY)], check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return render()


def one(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_selector_matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_every_object_is_namespaced_to_berth(docs):
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "berth", d["metadata"]["name"]


def test_deployment_shape(docs):
    dep = one(docs, "Deployment")
    spec = dep["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod_selector_matches(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    server = next(c for c in pod["containers"] if c["name"] == "server")
    assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert server["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert server["ports"][0]["containerPort"] == 3000
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["runAsNonRoot"] is True, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
        assert {"cpu", "memory"} <= set(c["resources"]["requests"]), c["name"]
        assert {"cpu", "memory"} <= set(c["resources"]["limits"]), c["name"]
        assert re.match(r"^[^:@]+[:@].+", c["image"]), f"{c['name']} image is not pinned: {c['image']}"
        assert c["image"] == server["image"], "migrations must run the release's own image"


def test_config_and_secrets_come_from_configmap_and_existing_secret(docs):
    dep = one(docs, "Deployment")
    cm = one(docs, "ConfigMap")
    server = dep["spec"]["template"]["spec"]["containers"][0]
    refs = server["envFrom"]
    assert {"configMapRef": {"name": cm["metadata"]["name"]}} in refs
    assert {"secretRef": {"name": "berth-secrets"}} in refs
    # The Secret exists beforehand (created by the operator); the manifests never carry one.
    assert not [d for d in docs if d["kind"] == "Secret"]
    for key in ("LEPTOS_SITE_ROOT", "LEPTOS_SITE_ADDR", "LEPTOS_OUTPUT_NAME", "BERTH_PUBLIC_URL", "AWS_REGION",
                "BERTH_OIDC_ISSUER", "BERTH_OIDC_CLIENT_ID", "BERTH_RANCHER_URL", "BERTH_DOMAIN",
                "BERTH_REGISTRY_SERVER", "BERTH_REGISTRY_USERNAME"):
        assert key in cm["data"], key
    for secret_key in ("DATABASE_URL", "BERTH_OIDC_CLIENT_SECRET", "BERTH_RANCHER_TOKEN", "BERTH_REGISTRY_PASSWORD"):
        assert secret_key not in cm["data"], f"{secret_key} belongs in the Secret"
    assert cm["data"]["LEPTOS_SITE_ADDR"] == "0.0.0.0:3000"


def test_migrations_run_before_the_server(docs):
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    init = pod.get("initContainers", [])
    assert [c["command"] for c in init] == [["/app/server", "migrate"]]
    assert init[0]["envFrom"] == pod["containers"][0]["envFrom"]


def test_service_account_has_irsa_role(docs):
    sa = one(docs, "ServiceAccount")
    arn = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/berth-[a-z0-9-]+-app", arn), arn


def test_service_and_ingress_reach_the_pods(docs):
    dep = one(docs, "Deployment")
    svc = one(docs, "Service")
    ing = one(docs, "Ingress")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pod_selector_matches(svc["spec"]["selector"], labels)
    assert ing["spec"]["ingressClassName"] == "alb"
    ann = ing["metadata"]["annotations"]
    assert ann["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert ann["alb.ingress.kubernetes.io/healthcheck-path"] == "/readyz"
    assert ann["alb.ingress.kubernetes.io/certificate-arn"].startswith("arn:aws")
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == svc["metadata"]["name"]


def test_pdb_and_network_policy_select_the_pods(docs):
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    pdb = one(docs, "PodDisruptionBudget")
    assert pod_selector_matches(pdb["spec"]["selector"]["matchLabels"], labels)
    np = one(docs, "NetworkPolicy")
    assert pod_selector_matches(np["spec"]["podSelector"]["matchLabels"], labels)
    # The DNS rule must select CoreDNS, not Berth's labels.
    dns = np["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"]
    assert dns == {"k8s-app": "kube-dns"}
