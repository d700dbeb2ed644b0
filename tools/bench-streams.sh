#!/usr/bin/env bash
# Live-progress streams at scale (figures, not a test; recorded in docs/benchmarks.md): starts
# Berth on loopback with a fresh database and the development sign-in, requests one environment
# through the API, then opens 10, 100 and 1,000 server-sent-event streams on it (10 per
# session, the server's cap, so 100 sessions for 1,000) and at each step prints the server's
# RSS and what one change of the environment costs in database queries (tools/bench-streams.py
# says how they are counted). The changes are events inserted into the environment's timeline,
# as the engine writes them; every stream must receive every one.
#
#   tools/bench-streams.sh                 release build, 10 / 100 / 1,000 streams, 20 changes
#   BENCH_DEBUG=1 tools/bench-streams.sh   the debug build instead
#   BENCH_STREAMS="10 100 1000 1900" BENCH_CHANGES=50 tools/bench-streams.sh
#
# Every request goes to 127.0.0.1 only.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_postgres

PORT="${BENCH_PORT:-3150}"
BASE="http://127.0.0.1:$PORT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

if [ -n "${BENCH_DEBUG:-}" ]; then
  log "debug build of the server"
  SQLX_OFFLINE=true cargo build -q -p server
  server_bin="$TARGET_DIR/debug/server"
else
  log "release build of the server (SSR only)"
  SQLX_OFFLINE=true cargo build -q --release -p server
  server_bin="$TARGET_DIR/release/server"
fi

db="$(fresh_database berth_bench_streams)"
site="$(mktemp -d)"
at_exit "rm -rf '$site'"
# No worker (nothing else writes to the database meanwhile); a stream's re-check of its reader
# (every 60 s by default, two queries per stream) is pushed out of the measurement's way: it is
# a cost per stream and minute, not per change.
server_env=(DATABASE_URL="$db" LEPTOS_OUTPUT_NAME=berth LEPTOS_SITE_ROOT="$site"
  LEPTOS_SITE_ADDR="127.0.0.1:$PORT" BERTH_DEV_LOGIN=true BERTH_SEED_DEMO=true BERTH_WORKER=false
  BERTH_STREAM_RECHECK_SECONDS=3600 RUST_LOG=warn,sqlx::query=debug)
env -u BERTH_OIDC_ISSUER -u BERTH_OIDC_CLIENT_ID -u BERTH_OIDC_CLIENT_SECRET "${server_env[@]}" \
  "$server_bin" >"$LOCAL/bench-streams.log" 2>&1 &
pid=$!
at_exit "kill $pid"
wait_http "$BASE/readyz" 60 "$pid" "$LOCAL/bench-streams.log" || die "the server did not start"

log "one environment, requested by Maria through the API"
token="$(env "${server_env[@]}" RUST_LOG=warn "$server_bin" token maria read,request 1 | tail -n 1)"
answer="$(curl -fsS -H "authorization: Bearer $token" -H 'content-type: application/json' \
  --data '{"name":"Stream Bench","slug":"stream-bench","owner_contact":"ops@seaview.example","blueprint":"insight","size":"small"}' \
  "$BASE/api/v1/requests")"
request="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$answer")"
environment="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["environment_id"])' <<<"$answer")"
# Everyone who may read environments (Nora has no role).
users="$(psql -qAt "$db" -c "SELECT string_agg(id::text, ' ') FROM users
                             WHERE subject IN ('maria', 'mark', 'ada', 'alan', 'audrey', 'sam')")"

log "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(basename "$server_bin" | sed 's/^/server binary: /') ($(basename "$(dirname "$server_bin")"))"
BENCH_PORT="$PORT" BENCH_SERVER_PID="$pid" BENCH_DB="$db" BENCH_ENVIRONMENT="$environment" \
  BENCH_REQUEST="$request" BENCH_USERS="$users" BENCH_SERVER_LOG="$LOCAL/bench-streams.log" \
  python3 tools/bench-streams.py
log "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
