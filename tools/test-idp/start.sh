#!/usr/bin/env bash
# Start Berth's local OpenID Connect provider in the background and wait until it answers
# discovery. Usage: tools/test-idp/start.sh [port]   (default: $IDP_PORT or 4444)
# Prints the provider's pid on stdout (last line); its log goes to .local/test-idp/provider-<port>.log.
# Other settings come from the IDP_* environment variables described in provider.mjs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$root/tools/lib.sh"
port="${1:-${IDP_PORT:-4444}}"
export IDP_PORT="$port"
issuer="${IDP_ISSUER:-http://127.0.0.1:$port}"

command -v node >/dev/null || { echo "test-idp: node is not installed (apt-get install nodejs npm)" >&2; exit 1; }
command -v npm >/dev/null || { echo "test-idp: npm is not installed (apt-get install npm)" >&2; exit 1; }

# Install from the lock when node_modules is missing or older than the lock.
stamp="$here/node_modules/.berth-lock.sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [[ ! -d "$here/node_modules/oidc-provider" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "test-idp: installing npm packages (npm ci)" >&2
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$want" >"$stamp"
fi

if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
    echo "test-idp: something already answers on port $port; stop it first" >&2
    exit 1
fi

mkdir -p "$root/.local/test-idp"
log="$root/.local/test-idp/provider-$port.log"
nohup node "$here/provider.mjs" >"$log" 2>&1 &
pid=$!

if wait_http "$issuer/.well-known/openid-configuration" 10 "$pid" "$log"; then
    echo "test-idp: ready at $issuer (pid $pid, log $log)" >&2
    echo "$pid"
    exit 0
fi
echo "test-idp: no discovery answer at $issuer (exited, or none after 10 s); stopping pid $pid" >&2
kill "$pid" 2>/dev/null || true
exit 1
