#!/usr/bin/env bash
# Creates .local/venv-infra with the pinned infrastructure checkers. Idempotent: when every pin
# in requirements.txt is already installed at its version, it does nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.local/venv-infra"
hcl_target="$venv/hcl2-site"
req="$here/requirements.txt"

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
  echo "setup.sh: need Python >= 3.9 as '$python'" >&2
  exit 1
fi

# Requirement lines without comments, split into the venv set and the --target set.
venv_reqs=()
hcl_reqs=()
kubectl_reqs=()
while IFS= read -r line; do
  spec="${line%%#*}"
  spec="$(echo "$spec" | tr -d '[:space:]')"
  [ -z "$spec" ] && continue
  if [[ "$line" == *"# hcl-target"* ]]; then hcl_reqs+=("$spec")
  elif [[ "$line" == *"# kubectl-fallback"* ]]; then kubectl_reqs+=("$spec")
  else venv_reqs+=("$spec"); fi
done <"$req"

# The machine's kubectl will do when its built-in kustomize is v5 or newer.
system_kubectl_ok() {
  command -v kubectl >/dev/null 2>&1 \
    && kubectl version --client 2>/dev/null | grep -Eq '^Kustomize Version: v([5-9]|[1-9][0-9])\.'
}
if system_kubectl_ok; then kubectl_reqs=(); fi

installed_ok() {
  # $1 = python to ask, $2 = extra sys.path entry or "", rest = name==version pins
  local py="$1" extra="$2"
  shift 2
  "$py" - "$extra" "$@" <<'PY'
import sys
from importlib import metadata
extra, pins = sys.argv[1], sys.argv[2:]
if extra:
    dists = {d.metadata["Name"].lower().replace("_", "-"): d.version
             for d in metadata.distributions(path=[extra])}
    get = lambda n: dists.get(n)
else:
    def get(n):
        try:
            return metadata.version(n)
        except metadata.PackageNotFoundError:
            return None
for pin in pins:
    name, version = pin.split("==")
    if get(name.lower()) != version:
        sys.exit(1)
PY
}

if [ -x "$venv/bin/python" ] \
  && installed_ok "$venv/bin/python" "" "${venv_reqs[@]}" "${kubectl_reqs[@]}" \
  && installed_ok "$venv/bin/python" "$hcl_target" "${hcl_reqs[@]}"; then
  echo "infra tools already installed in $venv"
  exit 0
fi

echo "installing infra tools into $venv"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${venv_reqs[@]}" "${kubectl_reqs[@]}"
rm -rf "$hcl_target"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --target "$hcl_target" "${hcl_reqs[@]}"

installed_ok "$venv/bin/python" "" "${venv_reqs[@]}" "${kubectl_reqs[@]}"
installed_ok "$venv/bin/python" "$hcl_target" "${hcl_reqs[@]}"
echo "infra tools ready in $venv"
