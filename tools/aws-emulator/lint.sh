#!/usr/bin/env bash
# Lints every CloudFormation template: cfn-lint (errors and warnings fail) and checkov
# (offline; every finding must be fixed or skipped with a reason in the template), then runs
# the emulator extension's smoke test, which fails when a moto upgrade moved its hooks.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$("$HERE/setup.sh")"
TEMPLATES="$ROOT/templates/cloudformation"

shopt -s nullglob
files=("$TEMPLATES"/*.yaml "$TEMPLATES"/*.yml "$TEMPLATES"/*.json)
if [ ${#files[@]} -eq 0 ]; then
    echo "lint: no templates in $TEMPLATES" >&2
    exit 1
fi

echo "cfn-lint $("$VENV/bin/cfn-lint" --version | awk '{print $2}'): ${files[*]#"$ROOT"/}"
"$VENV/bin/cfn-lint" -- "${files[@]}"

echo "checkov: $TEMPLATES"
# --skip-download keeps checkov offline (no guideline download from its vendor).
"$VENV/bin/checkov" --directory "$TEMPLATES" --framework cloudformation --skip-download \
    --compact --quiet

echo "emulator extension smoke test"
"$VENV/bin/python" "$HERE/smoke_test.py"
