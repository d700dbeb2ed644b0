#!/usr/bin/env bash
# Prints Berth's build and footprint figures (recorded in docs/benchmarks.md):
#   tools/bench.sh           release WASM size (raw, gzip) and the server's idle memory
#   tools/bench.sh --cold    also a cold release build of the site and server in a fresh target dir
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
install_all
ensure_postgres

if [ "${1:-}" = "--cold" ]; then
  cold="$(mktemp -d)"
  at_exit "rm -rf '$cold'"
  log "cold release build in $cold (dependencies already downloaded)"
  start=$SECONDS
  CARGO_TARGET_DIR="$cold" SQLX_OFFLINE=true tools/build-site.sh --release --server >/dev/null 2>&1
  echo "cold release build: $((SECONDS - start)) s on $(nproc) cores"
fi

SQLX_OFFLINE=true tools/build-site.sh --release --server >/dev/null 2>&1
wasm=target/site/pkg/berth.wasm
js=target/site/pkg/berth.js
printf 'release WASM: %s bytes raw, %s bytes gzipped\n' "$(stat -c %s "$wasm")" "$(gzip -9c "$wasm" | wc -c)"
printf 'JS glue: %s bytes raw, %s bytes gzipped\n' "$(stat -c %s "$js")" "$(gzip -9c "$js" | wc -c)"
printf 'CSS: %s bytes raw\n' "$(stat -c %s target/site/pkg/berth.css)"
printf 'server binary: %s bytes\n' "$(stat -c %s target/release/server)"

db="$(fresh_database berth_bench)"
DATABASE_URL="$db" LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_ADDR=127.0.0.1:3097 \
  BERTH_DEV_LOGIN=true BERTH_SEED_DEMO=true BERTH_WORKER=false RUST_LOG=warn target/release/server &
pid=$!
at_exit "kill $pid"
wait_http http://127.0.0.1:3097/readyz 30 "$pid" || die "the server did not start"
# Warm it with a few page loads, then let it idle.
for p in / /login /requests/new; do curl -fs "http://127.0.0.1:3097$p" >/dev/null || true; done
sleep 3
echo "server idle memory: $(awk '/VmRSS/ { print $2, $3 }' "/proc/$pid/status") RSS"
