#!/usr/bin/env bash
# Creates (or reuses) a Python venv with the pins of a requirements file:
#   tools/pyvenv.sh VENV REQUIREMENTS [LABEL]
# Idempotent: does nothing when the installed versions already match the pins.
# Prints nothing on stdout but the venv path, so callers may use VENV=$(tools/pyvenv.sh ...).
set -euo pipefail

VENV="$1"
REQ="$2"
LABEL="${3:-$(basename "$VENV")}"
PYTHON="${PYTHON:-python3}"

pins() { grep -E '^[A-Za-z0-9_.-]+(\[[^]]*\])?==' "$REQ" | sed -E 's/\[[^]]*\]//'; }

installed_matches() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - "$@" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}

# shellcheck disable=SC2046
if installed_matches $(pins); then
    echo "$LABEL: venv up to date ($VENV)" >&2
    echo "$VENV"
    exit 0
fi

if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    echo "$LABEL: $PYTHON lacks venv/ensurepip; on Debian: apt-get install -y python3-venv" >&2
    exit 1
fi

echo "$LABEL: installing $(pins | tr '\n' ' ')into $VENV" >&2
mkdir -p "$(dirname "$VENV")"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ" >&2
# shellcheck disable=SC2046
if ! installed_matches $(pins); then
    echo "$LABEL: installed versions do not match $REQ" >&2
    exit 1
fi
echo "$VENV"
