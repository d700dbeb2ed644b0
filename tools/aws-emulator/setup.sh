#!/usr/bin/env bash
# Creates (or reuses) the Python venv of Berth's local AWS tools at .local/venv-aws:
# moto (emulator), cfn-lint and checkov, pinned in requirements.txt.
# Idempotent: does nothing when the installed versions already match the pins.
# Prints nothing on stdout but the venv path, so callers may use VENV=$(.../setup.sh).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
exec "$ROOT/tools/pyvenv.sh" "${BERTH_AWS_VENV:-$ROOT/.local/venv-aws}" "$HERE/requirements.txt" "aws tools"
