"""The policy checks on rendered Kubernetes manifests that schema validation and checkov do not
make: the requirements of Berth's own deployment (issue 8) and of the security review (issue 15,
point 8), on `kubectl kustomize` output:

* the provisioning worker runs as its own Deployment (`server worker`) with its own service
  account, the one Terraform's IRSA role trusts; the web pods run with BERTH_WORKER=false and hold
  no AWS role, no Rancher token and no registry password (no shared Secret, no such variables);
* only the web pods' migrate init container gets the database owner's URL (Secret berth-migrate);
  the server and the worker connect as the runtime role;
* every container image is pinned by digest;
* a default-deny NetworkPolicy, and egress allowlists per component: only the listed ports, to
  the listed peers, never to the instance metadata endpoint.

Each `*_problems` function returns the problems it finds; test_manifests.py runs them on the real
render and on broken variants.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "deploy" / "overlays" / "example"

WEB = "berth"  # the web Deployment (Service, Ingress and PodDisruptionBudget point at its pods)
WORKER = "berth-worker"
WORKER_COMMAND = ["/app/server", "worker"]
ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
# What only the worker may hold: the Rancher token, the registry password, AWS credentials.
WORKER_ONLY_VARIABLES = {
    "BERTH_RANCHER_TOKEN",
    "BERTH_REGISTRY_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
}
# The database owner's URL (migrations), for the migrate init container alone.
OWNER_SECRET = "berth-migrate"
OWNER_VARIABLE = "BERTH_MIGRATE_DATABASE_URL"
DIGEST_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$")

# Egress allowlists: (port, protocol) per component, nothing else.
DNS = {(53, "UDP"), (53, "TCP")}
EGRESS_PORTS = {
    "server": DNS | {(5432, "TCP"), (443, "TCP"), (465, "TCP")},
    "worker": DNS | {(5432, "TCP"), (443, "TCP")},
}
# "The internet" excludes these; 169.254.0.0/16 holds the instance metadata endpoint.
PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")]
METADATA_IP = ipaddress.ip_address("169.254.169.254")
KUBE_DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def one(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def named(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_selector_matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def terraform_default(variable: str) -> str:
    text = (ROOT / "terraform" / "variables.tf").read_text()
    match = re.search(rf'variable "{variable}" \{{.*?\n\s*default\s*=\s*"([^"]*)"', text, flags=re.S)
    assert match, f"terraform/variables.tf: no default for {variable}"
    return match.group(1)


# ---- helpers over pods -----------------------------------------------------------------------------


def deployments(docs) -> list[dict]:
    return [d for d in docs if d["kind"] == "Deployment"]


def pod_spec(dep) -> dict:
    return dep["spec"]["template"]["spec"]


def containers(pod: dict) -> list[dict]:
    return pod.get("initContainers", []) + pod["containers"]


def runs(container: dict) -> list[str]:
    return list(container.get("command", [])) + list(container.get("args", []))


def env_value(container: dict, name: str):
    for e in container.get("env", []):
        if e["name"] == name:
            return e.get("value")
    return None


def container_secrets(c: dict) -> set[str]:
    names = {ref["secretRef"]["name"] for ref in c.get("envFrom", []) if "secretRef" in ref}
    for e in c.get("env", []):
        key_ref = e.get("valueFrom", {}).get("secretKeyRef")
        if key_ref:
            names.add(key_ref["name"])
    return names


def secrets_referenced(pod: dict) -> set[str]:
    names = set()
    for c in containers(pod):
        for ref in c.get("envFrom", []):
            if "secretRef" in ref:
                names.add(ref["secretRef"]["name"])
        for e in c.get("env", []):
            key_ref = e.get("valueFrom", {}).get("secretKeyRef")
            if key_ref:
                names.add(key_ref["name"])
    for v in pod.get("volumes", []):
        if "secret" in v:
            names.add(v["secret"]["secretName"])
        for source in v.get("projected", {}).get("sources", []):
            if "secret" in source:
                names.add(source["secret"]["name"])
    return names


def configmaps_referenced(pod: dict) -> set[str]:
    names = set()
    for c in containers(pod):
        for ref in c.get("envFrom", []):
            if "configMapRef" in ref:
                names.add(ref["configMapRef"]["name"])
        for e in c.get("env", []):
            key_ref = e.get("valueFrom", {}).get("configMapKeyRef")
            if key_ref:
                names.add(key_ref["name"])
    return names


def variables_seen(docs, pod: dict) -> set[str]:
    """Every variable a pod's containers get by name: env, and the keys of its ConfigMaps."""
    names = {e["name"] for c in containers(pod) for e in c.get("env", [])}
    for cm in docs:
        if cm["kind"] == "ConfigMap" and cm["metadata"]["name"] in configmaps_referenced(pod):
            names |= set(cm.get("data", {}))
    return names


def service_account(docs, pod: dict) -> dict:
    return named(docs, "ServiceAccount", pod.get("serviceAccountName", "default"))


def the_worker(docs) -> dict | None:
    found = [d for d in deployments(docs) if any(runs(c) == WORKER_COMMAND for c in pod_spec(d)["containers"])]
    return found[0] if len(found) == 1 else None


# ---- the checks -----------------------------------------------------------------------------------


def web_problems(docs) -> list[str]:
    """The web pods: worker off, no AWS role, no worker secret, nothing of the worker's."""
    problems = []
    web = named(docs, "Deployment", WEB)
    pod = pod_spec(web)
    for c in containers(pod):
        if env_value(c, "BERTH_WORKER") != "false":
            problems.append(f"web container {c['name']} does not set BERTH_WORKER=false")
        if runs(c)[-1:] == ["worker"]:
            problems.append(f"web container {c['name']} runs the worker")
    sa = service_account(docs, pod)
    if ROLE_ANNOTATION in sa["metadata"].get("annotations", {}):
        problems.append(f"web service account {sa['metadata']['name']} carries an AWS role")
    if sa.get("automountServiceAccountToken") is not False or pod.get("automountServiceAccountToken") is not False:
        problems.append("web pods mount a Kubernetes API token")
    worker = the_worker(docs)
    if worker is not None:
        worker_pod = pod_spec(worker)
        if pod.get("serviceAccountName", "default") == worker_pod.get("serviceAccountName", "default"):
            problems.append("web and worker share a service account")
        shared = secrets_referenced(pod) & secrets_referenced(worker_pod)
        if shared:
            problems.append(f"web pods mount the worker's Secret(s) {sorted(shared)}")
    held = variables_seen(docs, pod) & WORKER_ONLY_VARIABLES
    if held:
        problems.append(f"web pods get {sorted(held)}")
    return problems


def worker_problems(docs) -> list[str]:
    """The worker: its own Deployment running `server worker`, its own (IRSA) service account,
    its own Secret, the web's image and security settings."""
    worker = the_worker(docs)
    if worker is None:
        return [f"no single Deployment runs {WORKER_COMMAND}"]
    problems = []
    web = named(docs, "Deployment", WEB)
    pod, web_pod = pod_spec(worker), pod_spec(web)
    if worker["metadata"]["name"] == WEB:
        problems.append("the worker runs in the web Deployment")
    sa_name = pod.get("serviceAccountName", "default")
    if sa_name != terraform_default("berth_service_account"):
        problems.append(f"worker service account {sa_name} is not the one Terraform's IRSA role trusts")
    if worker["metadata"].get("namespace") != terraform_default("berth_namespace"):
        problems.append("the worker is not in the namespace Terraform's IRSA role trusts")
    arn = service_account(docs, pod)["metadata"].get("annotations", {}).get(ROLE_ANNOTATION, "")
    if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/berth-[a-z0-9-]+-app", arn):
        problems.append(f"worker service account has no IRSA role ({arn or 'none'})")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("worker pods mount a Kubernetes API token")
    for c in containers(pod):
        if env_value(c, "BERTH_WORKER") == "false":
            problems.append(f"worker container {c['name']} turns the worker off")
        if c["image"] != web_pod["containers"][0]["image"]:
            problems.append(f"worker container {c['name']} runs another image than the web pods")
        if c.get("securityContext") != web_pod["containers"][0].get("securityContext"):
            problems.append(f"worker container {c['name']} has other security settings than the web pods")
        if not {"cpu", "memory"} <= set(c.get("resources", {}).get("limits", {})):
            problems.append(f"worker container {c['name']} has no resource limits")
    if pod.get("securityContext") != web_pod.get("securityContext"):
        problems.append("worker pods have other security settings than the web pods")
    if not secrets_referenced(pod):
        problems.append("the worker mounts no Secret (it needs the Rancher token and registry password)")
    labels = worker["spec"]["template"]["metadata"]["labels"]
    for svc in (d for d in docs if d["kind"] == "Service"):
        if pod_selector_matches(svc["spec"].get("selector", {}), labels):
            problems.append(f"Service {svc['metadata']['name']} routes to the worker")
    return problems


def owner_secret_problems(docs) -> list[str]:
    """The owner's URL reaches the web pods' migrate init container and nothing else: the server
    and the worker run as the runtime role, which may only insert into and read the audit trail."""
    problems = []
    for d in deployments(docs):
        pod = pod_spec(d)
        init_names = {c["name"] for c in pod.get("initContainers", [])}
        for c in containers(pod):
            where = f"Deployment {d['metadata']['name']}: container {c['name']}"
            migrates = d["metadata"]["name"] == WEB and c["name"] in init_names and runs(c) == ["/app/server", "migrate"]
            holds = OWNER_SECRET in container_secrets(c) or any(e["name"] == OWNER_VARIABLE for e in c.get("env", []))
            if holds and not migrates:
                problems.append(f"{where} gets the database owner's URL")
            if migrates and not any(
                e["name"] == OWNER_VARIABLE and e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == OWNER_SECRET
                for e in c.get("env", [])
            ):
                problems.append(f"{where} migrates without {OWNER_VARIABLE} from Secret {OWNER_SECRET}")
        for v in pod.get("volumes", []):
            if v.get("secret", {}).get("secretName") == OWNER_SECRET:
                problems.append(f"Deployment {d['metadata']['name']} mounts {OWNER_SECRET} as a volume")
    return problems


def image_problems(docs) -> list[str]:
    problems = []
    for d in docs:
        template = d.get("spec", {}).get("template", {}).get("spec")
        for c in containers(template) if template else []:
            if not DIGEST_IMAGE.match(c.get("image", "")):
                problems.append(f"{d['kind']} {d['metadata']['name']}: {c['name']} image {c.get('image')} is not pinned by digest")
    return problems


def policies_for(docs, labels: dict) -> list[dict]:
    return [
        np
        for np in docs
        if np["kind"] == "NetworkPolicy" and pod_selector_matches(np["spec"]["podSelector"].get("matchLabels", {}), labels)
    ]


def peer_problems(where: str, port: tuple[int, str], peer: dict) -> list[str]:
    if port in DNS:
        return [] if peer == KUBE_DNS_PEER else [f"{where}: DNS to {peer}, not to kube-dns"]
    block = peer.get("ipBlock")
    if block is None or set(peer) != {"ipBlock"}:
        return [f"{where}: port {port[0]} to pods ({peer}) rather than an address block"]
    cidr = ipaddress.ip_network(block["cidr"])
    excepted = [ipaddress.ip_network(e) for e in block.get("except", [])]
    problems = []
    if cidr.version == 4 and METADATA_IP in cidr and not any(METADATA_IP in e for e in excepted):
        problems.append(f"{where}: port {port[0]} reaches the instance metadata endpoint {METADATA_IP}")
    if port[0] == 5432 and not cidr.is_private:
        problems.append(f"{where}: PostgreSQL to {cidr}, beyond the private network")
    if cidr.prefixlen == 0:
        missing = [str(n) for n in PRIVATE if not any(n.subnet_of(e) for e in excepted)]
        if missing:
            problems.append(f"{where}: port {port[0]} to the internet does not except {missing}")
    return problems


def egress_problems(docs) -> list[str]:
    """A default deny, then per component only its listed ports, each to its listed peers."""
    problems = []
    deny = [
        np
        for np in docs
        if np["kind"] == "NetworkPolicy"
        and np["spec"]["podSelector"] == {}
        and set(np["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not np["spec"].get("ingress")
        and not np["spec"].get("egress")
    ]
    if not deny:
        problems.append("no default-deny NetworkPolicy for the namespace")
    for dep in deployments(docs):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        component = labels.get("app.kubernetes.io/component")
        allowed = EGRESS_PORTS.get(component)
        if allowed is None:
            problems.append(f"Deployment {dep['metadata']['name']}: no egress allowlist for component {component}")
            continue
        own = [np for np in policies_for(docs, labels) if np["spec"]["podSelector"] != {}]
        if not own:
            problems.append(f"Deployment {dep['metadata']['name']}: no NetworkPolicy selects its pods")
        opened = set()
        for np in policies_for(docs, labels):
            name = np["metadata"]["name"]
            if "Egress" not in np["spec"].get("policyTypes", []):
                problems.append(f"NetworkPolicy {name} does not restrict egress")
            if component == "worker" and np["spec"].get("ingress"):
                problems.append(f"NetworkPolicy {name} lets traffic into the worker")
            for i, rule in enumerate(np["spec"].get("egress", [])):
                where = f"NetworkPolicy {name} egress {i}"
                if not rule.get("ports"):
                    problems.append(f"{where}: every port")
                    continue
                if not rule.get("to"):
                    problems.append(f"{where}: every destination (the instance metadata endpoint too)")
                for p in rule["ports"]:
                    if "endPort" in p:
                        problems.append(f"{where}: a port range")
                    port = (p.get("port"), p.get("protocol", "TCP"))
                    opened.add(port)
                    for peer in rule.get("to", []):
                        problems.extend(peer_problems(where, port, peer))
        extra, missing = opened - allowed, allowed - opened
        if extra:
            problems.append(f"{component} pods may also reach ports {sorted(extra)}")
        if missing:
            problems.append(f"{component} pods cannot reach ports {sorted(missing)}")
    return problems
