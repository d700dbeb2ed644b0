"""Tests of the Kubernetes manifests' policy checks (manifest_checks.py): the real render must
pass every check, and each check has negative tests on a bad variant (the render with one thing
broken, or a snippet), so none of them can pass vacuously.

check.sh renders deploy/overlays/example to a file and passes it in BERTH_RENDERED_MANIFESTS;
run alone, this test renders it itself with kubectl.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from manifest_checks import (
    ROOT,
    OVERLAY,
    WEB,
    WORKER,
    ROLE_ANNOTATION,
    WORKER_ONLY_VARIABLES,
    OWNER_SECRET,
    OWNER_VARIABLE,
    KUBE_DNS_PEER,
    one,
    named,
    pod_selector_matches,
    deployments,
    pod_spec,
    containers,
    env_value,
    secrets_referenced,
    configmaps_referenced,
    the_worker,
    web_problems,
    worker_problems,
    owner_secret_problems,
    image_problems,
    egress_problems,
)


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
def rendered() -> list[dict]:
    return render()


@pytest.fixture
def docs(rendered) -> list[dict]:
    """A fresh copy per test: the negative tests break their own."""
    return copy.deepcopy(rendered)


# ---- the real render --------------------------------------------------------------------------------


def test_every_object_is_namespaced_to_berth(docs):
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "berth", d["metadata"]["name"]


def test_web_pods_hold_nothing_of_the_worker(docs):
    assert web_problems(docs) == []


def test_worker_runs_apart_with_its_own_service_account(docs):
    assert worker_problems(docs) == []


def test_only_migrations_get_the_database_owner(docs):
    assert owner_secret_problems(docs) == []


def test_every_image_is_pinned_by_digest(docs):
    assert image_problems(docs) == []


def test_egress_is_an_allowlist(docs):
    assert egress_problems(docs) == []


def test_deployment_shape(docs):
    dep = named(docs, "Deployment", WEB)
    spec = dep["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod_selector_matches(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    server = next(c for c in pod["containers"] if c["name"] == "server")
    assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert server["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert server["ports"][0]["containerPort"] == 3000
    for d in deployments(docs):
        assert pod_selector_matches(d["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"])
        for c in containers(pod_spec(d)):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["runAsNonRoot"] is True, c["name"]
            assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", c["name"]
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), c["name"]
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), c["name"]
            assert c["image"] == server["image"], "migrations and the worker run the release's own image"


def test_config_and_secrets_come_from_configmaps_and_existing_secrets(docs):
    web = pod_spec(named(docs, "Deployment", WEB))
    worker = pod_spec(the_worker(docs))
    cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    shared = next(n for n in cms if n.startswith("berth-config-"))
    worker_only = next(n for n in cms if n.startswith("berth-worker-config-"))
    assert configmaps_referenced(web) == {shared}
    assert configmaps_referenced(worker) == {shared, worker_only}
    # The Secrets exist beforehand (created by the operator); the manifests never carry one.
    assert not [d for d in docs if d["kind"] == "Secret"]
    assert secrets_referenced(web) == {"berth-web-secrets", OWNER_SECRET}
    assert secrets_referenced(worker) == {"berth-worker-secrets"}
    for key in ("LEPTOS_SITE_ROOT", "LEPTOS_SITE_ADDR", "LEPTOS_OUTPUT_NAME", "BERTH_PUBLIC_URL",
                "BERTH_OIDC_ISSUER", "BERTH_OIDC_CLIENT_ID", "BERTH_COMPANY_NAME"):
        assert key in cms[shared]["data"], key
    for key in ("AWS_REGION", "BERTH_RANCHER_URL", "BERTH_DOMAIN", "BERTH_REGISTRY_SERVER", "BERTH_REGISTRY_USERNAME"):
        assert key in cms[worker_only]["data"], key
        assert key not in cms[shared]["data"], f"{key} is the worker's alone"
    for cm in cms.values():
        for secret_key in ("DATABASE_URL", "BERTH_OIDC_CLIENT_SECRET", "BERTH_SMTP_URL", *WORKER_ONLY_VARIABLES):
            assert secret_key not in cm.get("data", {}), f"{secret_key} belongs in a Secret"
    assert cms[shared]["data"]["LEPTOS_SITE_ADDR"] == "0.0.0.0:3000"
    # `server worker` reads no sign-in settings: no client secret, not even a placeholder.
    assert env_value(worker["containers"][0], "BERTH_OIDC_CLIENT_SECRET") is None


def test_migrations_run_before_the_server(docs):
    pod = pod_spec(named(docs, "Deployment", WEB))
    init = pod.get("initContainers", [])
    assert [c["command"] for c in init] == [["/app/server", "migrate"]]
    # The server's settings, the owner's URL, and of the web's Secret only DATABASE_URL (whose
    # user is the runtime role to grant).
    assert init[0]["envFrom"] == [r for r in pod["containers"][0]["envFrom"] if "configMapRef" in r]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in init[0]["env"] if "valueFrom" in e}
    assert refs == {
        "DATABASE_URL": {"name": "berth-web-secrets", "key": "DATABASE_URL"},
        OWNER_VARIABLE: {"name": OWNER_SECRET, "key": OWNER_VARIABLE},
    }


def test_service_and_ingress_reach_the_web_pods(docs):
    dep = named(docs, "Deployment", WEB)
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


def test_pdb_and_network_policy_select_the_web_pods(docs):
    labels = named(docs, "Deployment", WEB)["spec"]["template"]["metadata"]["labels"]
    pdb = one(docs, "PodDisruptionBudget")
    assert pod_selector_matches(pdb["spec"]["selector"]["matchLabels"], labels)
    np = named(docs, "NetworkPolicy", WEB)
    assert pod_selector_matches(np["spec"]["podSelector"]["matchLabels"], labels)
    assert np["spec"]["ingress"] == [{"from": [{"ipBlock": {"cidr": "10.60.0.0/16"}}], "ports": [{"port": 3000, "protocol": "TCP"}]}]
    # The DNS rule must select CoreDNS, not Berth's labels.
    assert np["spec"]["egress"][0]["to"][0] == KUBE_DNS_PEER


# ---- negative tests: each check catches a bad variant ------------------------------------------------


def web_container(docs, name="server"):
    return next(c for c in containers(pod_spec(named(docs, "Deployment", WEB))) if c["name"] == name)


def worker_container(docs):
    return pod_spec(named(docs, "Deployment", WORKER))["containers"][0]


def set_env(container, name, value):
    container["env"] = [e for e in container.get("env", []) if e["name"] != name] + [{"name": name, "value": value}]


def unsplit(docs):
    """The layout before the split: one Deployment running the worker in process."""
    docs[:] = [d for d in docs if not (d["kind"] == "Deployment" and d["metadata"]["name"] == WORKER)]
    for c in containers(pod_spec(named(docs, "Deployment", WEB))):
        c["env"] = [e for e in c.get("env", []) if e["name"] != "BERTH_WORKER"]
    pod_spec(named(docs, "Deployment", WEB))["serviceAccountName"] = "berth"


def rancher_token_in_config(docs):
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("berth-config-"))
    cm["data"]["BERTH_RANCHER_TOKEN"] = "token-abc:oops"


@pytest.mark.parametrize(
    "breaks, expected",
    [
        (unsplit, "does not set BERTH_WORKER=false"),
        (unsplit, "carries an AWS role"),
        (lambda d: set_env(web_container(d, "migrate"), "BERTH_WORKER", "true"), "migrate does not set BERTH_WORKER=false"),
        (lambda d: pod_spec(named(d, "Deployment", WEB)).update(serviceAccountName="berth"), "carries an AWS role"),
        (
            lambda d: named(d, "ServiceAccount", "berth-web")["metadata"].setdefault("annotations", {}).update(
                {ROLE_ANNOTATION: "arn:aws:iam::123456789012:role/berth-seaview-app"}
            ),
            "carries an AWS role",
        ),
        (lambda d: named(d, "ServiceAccount", "berth-web").pop("automountServiceAccountToken"), "mount a Kubernetes API token"),
        (
            lambda d: web_container(d)["envFrom"].append({"secretRef": {"name": "berth-worker-secrets"}}),
            "mount the worker's Secret(s) ['berth-worker-secrets']",
        ),
        (
            lambda d: web_container(d)["env"].append(
                {"name": "BERTH_REGISTRY_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "berth-worker-secrets", "key": "BERTH_REGISTRY_PASSWORD"}}}
            ),
            "web pods get ['BERTH_REGISTRY_PASSWORD']",
        ),
        (rancher_token_in_config, "web pods get ['BERTH_RANCHER_TOKEN']"),
        (lambda d: set_env(web_container(d), "AWS_SECRET_ACCESS_KEY", "x"), "web pods get ['AWS_SECRET_ACCESS_KEY']"),
    ],
)
def test_web_check_catches(docs, breaks, expected):
    breaks(docs)
    assert any(expected in p for p in web_problems(docs)), web_problems(docs)


@pytest.mark.parametrize(
    "breaks, expected",
    [
        (unsplit, "no single Deployment runs"),
        (lambda d: worker_container(d).update(command=["/app/server"]), "no single Deployment runs"),
        (lambda d: pod_spec(named(d, "Deployment", WORKER)).update(serviceAccountName="berth-web"), "not the one Terraform's IRSA role trusts"),
        (lambda d: named(d, "ServiceAccount", "berth")["metadata"]["annotations"].pop(ROLE_ANNOTATION), "has no IRSA role"),
        (lambda d: set_env(worker_container(d), "BERTH_WORKER", "false"), "turns the worker off"),
        (lambda d: worker_container(d).update(image="berth@sha256:" + "1" * 64), "another image"),
        (lambda d: worker_container(d)["securityContext"].update(readOnlyRootFilesystem=False), "other security settings"),
        (lambda d: worker_container(d)["securityContext"]["capabilities"].update(drop=[]), "other security settings"),
        (lambda d: pod_spec(named(d, "Deployment", WORKER))["securityContext"].pop("seccompProfile"), "other security settings"),
        (lambda d: pod_spec(named(d, "Deployment", WORKER)).pop("automountServiceAccountToken"), "mount a Kubernetes API token"),
        (lambda d: worker_container(d).update(envFrom=[]), "mounts no Secret"),
        (
            lambda d: one(d, "Service")["spec"].update(selector={"app.kubernetes.io/name": "berth"}),
            "routes to the worker",
        ),
    ],
)
def test_worker_check_catches(docs, breaks, expected):
    breaks(docs)
    assert any(expected in p for p in worker_problems(docs)), worker_problems(docs)


def owner_url_to(container):
    container.setdefault("env", []).append(
        {"name": OWNER_VARIABLE, "valueFrom": {"secretKeyRef": {"name": OWNER_SECRET, "key": OWNER_VARIABLE}}}
    )


@pytest.mark.parametrize(
    "breaks, expected",
    [
        (lambda d: owner_url_to(web_container(d)), "container server gets the database owner's URL"),
        (lambda d: owner_url_to(worker_container(d)), "container worker gets the database owner's URL"),
        (
            lambda d: worker_container(d)["envFrom"].append({"secretRef": {"name": OWNER_SECRET}}),
            "container worker gets the database owner's URL",
        ),
        (
            lambda d: web_container(d, "migrate").update(
                env=[e for e in web_container(d, "migrate")["env"] if e["name"] != OWNER_VARIABLE]
            ),
            "migrates without BERTH_MIGRATE_DATABASE_URL",
        ),
        (
            lambda d: pod_spec(named(d, "Deployment", WORKER))["volumes"].append(
                {"name": "owner", "secret": {"secretName": OWNER_SECRET}}
            ),
            "mounts berth-migrate as a volume",
        ),
    ],
)
def test_owner_secret_check_catches(docs, breaks, expected):
    breaks(docs)
    assert any(expected in p for p in owner_secret_problems(docs)), owner_secret_problems(docs)


@pytest.mark.parametrize(
    "image",
    [
        "123456789012.dkr.ecr.eu-central-1.amazonaws.com/berth:0.1.0",
        "123456789012.dkr.ecr.eu-central-1.amazonaws.com/berth",
        "berth:latest",
        "berth@sha256:0123",  # not a whole digest
        "berth@sha512:" + "0" * 128,
    ],
)
def test_image_check_catches(docs, image):
    web_container(docs, "migrate")["image"] = image
    assert image_problems(docs) == [f"Deployment {WEB}: migrate image {image} is not pinned by digest"]


def snippet_policy(egress: str) -> dict:
    return yaml.safe_load(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: extra, namespace: berth}\n"
        "spec:\n  podSelector: {matchLabels: {app.kubernetes.io/name: berth, app.kubernetes.io/component: server}}\n"
        "  policyTypes: [Egress]\n  egress:\n" + egress
    )


def add_policy(egress: str):
    return lambda d: d.append(snippet_policy(egress))


def web_egress(docs):
    return named(docs, "NetworkPolicy", WEB)["spec"]["egress"]


INTERNET = "{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16]}}"


@pytest.mark.parametrize(
    "breaks, expected",
    [
        (lambda d: d.remove(named(d, "NetworkPolicy", "berth-default-deny")), "no default-deny"),
        (lambda d: named(d, "NetworkPolicy", "berth-default-deny")["spec"].update(egress=[{}]), "no default-deny"),
        (lambda d: d.remove(named(d, "NetworkPolicy", "berth-worker")), "berth-worker: no NetworkPolicy selects its pods"),
        (lambda d: named(d, "NetworkPolicy", WEB)["spec"].update(policyTypes=["Ingress"]), "does not restrict egress"),
        # the layout before this change: HTTPS and SMTP to any address, the metadata endpoint included
        (lambda d: web_egress(d).__setitem__(2, {"ports": [{"port": 443, "protocol": "TCP"}]}), "egress 2: every destination"),
        (add_policy("    - ports: [{port: 22, protocol: TCP}]\n      to: [" + INTERNET + "]\n"), "server pods may also reach ports [(22, 'TCP')]"),
        (add_policy("    - to: [" + INTERNET + "]\n"), "extra egress 0: every port"),
        (add_policy("    - ports: [{port: 443, protocol: TCP}]\n      to: [{ipBlock: {cidr: 0.0.0.0/0}}]\n"), "reaches the instance metadata endpoint"),
        (add_policy("    - ports: [{port: 443, protocol: TCP}]\n      to: [{ipBlock: {cidr: 169.254.169.254/32}}]\n"), "reaches the instance metadata endpoint"),
        (
            add_policy("    - ports: [{port: 443, protocol: TCP}]\n      to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.0.0/16]}}]\n"),
            "to the internet does not except ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']",
        ),
        (add_policy("    - ports: [{port: 443, protocol: TCP, endPort: 8443}]\n      to: [" + INTERNET + "]\n"), "a port range"),
        (add_policy("    - ports: [{port: 5432, protocol: TCP}]\n      to: [" + INTERNET + "]\n"), "PostgreSQL to 0.0.0.0/0"),
        (add_policy("    - ports: [{port: 443, protocol: TCP}]\n      to: [{namespaceSelector: {}}]\n"), "rather than an address block"),
        (add_policy("    - ports: [{port: 53, protocol: UDP}]\n      to: [" + INTERNET + "]\n"), "DNS to"),
        (lambda d: web_egress(d).pop(3), "server pods cannot reach ports [(465, 'TCP')]"),
        (
            lambda d: named(d, "NetworkPolicy", "berth-worker")["spec"]["egress"][2]["ports"].append({"port": 465, "protocol": "TCP"}),
            "worker pods may also reach ports [(465, 'TCP')]",
        ),
        (
            lambda d: named(d, "NetworkPolicy", "berth-worker")["spec"]["egress"][2]["to"][0]["ipBlock"]["except"].remove("169.254.0.0/16"),
            "berth-worker egress 2: port 443 reaches the instance metadata endpoint",
        ),
        (
            lambda d: named(d, "NetworkPolicy", "berth-worker")["spec"].update(ingress=[{"ports": [{"port": 3000}]}]),
            "lets traffic into the worker",
        ),
    ],
)
def test_egress_check_catches(docs, breaks, expected):
    breaks(docs)
    assert any(expected in p for p in egress_problems(docs)), egress_problems(docs)


# ---- the secret split as docs/deploy.md creates it ----------------------------------------------------


def secret_keys_in(doc: str) -> dict[str, set[str]]:
    """The keys each `kubectl create secret generic NAME` in a shell snippet takes from the config
    secret, as picked by the jq object before it ({A, B, ...})."""
    found = {}
    for keys, name in re.findall(r"jq -r '\{([A-Z_, ]+)\}.*?create secret generic (\S+)", doc, flags=re.S):
        found[name] = {k.strip() for k in keys.split(",")}
    return found


def secret_split_problems(doc: str) -> list[str]:
    keys = secret_keys_in(doc)
    problems = []
    web, worker = keys.get("berth-web-secrets"), keys.get("berth-worker-secrets")
    if web is None or worker is None:
        return [f"the docs create {sorted(keys)}, not berth-web-secrets and berth-worker-secrets"]
    if web & WORKER_ONLY_VARIABLES:
        problems.append(f"berth-web-secrets gets {sorted(web & WORKER_ONLY_VARIABLES)}")
    if not {"DATABASE_URL", "BERTH_OIDC_CLIENT_SECRET"} <= web:
        problems.append("berth-web-secrets lacks the database URL or the client secret")
    if not {"DATABASE_URL", "BERTH_RANCHER_TOKEN", "BERTH_REGISTRY_PASSWORD"} <= worker:
        problems.append("berth-worker-secrets lacks the database URL, Rancher token or registry password")
    if worker & {"BERTH_OIDC_CLIENT_SECRET", "BERTH_SMTP_URL"}:
        problems.append(f"berth-worker-secrets gets the web's {sorted(worker & {'BERTH_OIDC_CLIENT_SECRET', 'BERTH_SMTP_URL'})}")
    for name, got in (("berth-web-secrets", web), ("berth-worker-secrets", worker)):
        if OWNER_VARIABLE in got:
            problems.append(f"{name} gets the database owner's URL")
    if keys.get(OWNER_SECRET) != {OWNER_VARIABLE}:
        problems.append(f"the docs do not create {OWNER_SECRET} with {OWNER_VARIABLE} alone")
    return problems


def test_docs_create_each_secret_with_its_own_keys():
    assert secret_split_problems((ROOT / "docs" / "deploy.md").read_text()) == []


@pytest.mark.parametrize(
    "doc, expected",
    [
        (
            "... | jq -r 'to_entries[] | \"\\(.key)=\\(.value)\"' | kubectl -n berth create secret generic berth-secrets ...",
            "not berth-web-secrets and berth-worker-secrets",
        ),
        (
            "jq -r '{DATABASE_URL, BERTH_OIDC_CLIENT_SECRET, BERTH_RANCHER_TOKEN} | x' | kubectl create secret generic berth-web-secrets\n"
            "jq -r '{DATABASE_URL, BERTH_RANCHER_TOKEN, BERTH_REGISTRY_PASSWORD} | x' | kubectl create secret generic berth-worker-secrets",
            "berth-web-secrets gets ['BERTH_RANCHER_TOKEN']",
        ),
        (
            "jq -r '{DATABASE_URL, BERTH_OIDC_CLIENT_SECRET} | x' | kubectl create secret generic berth-web-secrets\n"
            "jq -r '{DATABASE_URL, BERTH_RANCHER_TOKEN, BERTH_REGISTRY_PASSWORD, BERTH_SMTP_URL} | x' | kubectl create secret generic berth-worker-secrets",
            "berth-worker-secrets gets the web's ['BERTH_SMTP_URL']",
        ),
        (
            "jq -r '{DATABASE_URL, BERTH_OIDC_CLIENT_SECRET} | x' | kubectl create secret generic berth-web-secrets\n"
            "jq -r '{DATABASE_URL, BERTH_MIGRATE_DATABASE_URL, BERTH_RANCHER_TOKEN, BERTH_REGISTRY_PASSWORD} | x' | kubectl create secret generic berth-worker-secrets",
            "berth-worker-secrets gets the database owner's URL",
        ),
        (
            "jq -r '{DATABASE_URL, BERTH_OIDC_CLIENT_SECRET} | x' | kubectl create secret generic berth-web-secrets\n"
            "jq -r '{DATABASE_URL, BERTH_RANCHER_TOKEN, BERTH_REGISTRY_PASSWORD} | x' | kubectl create secret generic berth-worker-secrets",
            "the docs do not create berth-migrate",
        ),
    ],
)
def test_secret_split_check_catches(doc, expected):
    assert any(expected in p for p in secret_split_problems(doc)), secret_split_problems(doc)
