#!/usr/bin/env bash
# Runs every test: format, lint, offline query metadata, unit and database tests, the AWS,
# Rancher and SSO suites against their local servers, the API checks (openapi-spec-validator,
# schemathesis), infrastructure checks, and the end-to-end
# browser tests. Installs what is missing first; stops what it started on exit.
#   tools/test.sh          everything (what CI runs)
#   tools/test.sh --e2e [PLAYWRIGHT ARGS...]
#                          only the end-to-end part, for iterating on it (e.g. one spec file)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
export CI="${CI:-}"
# Single sign-on settings only where an instance is given its own (the end-to-end SSO server):
# every other Berth here has the development sign-in, and Berth refuses to run with both.
unset "${!BERTH_OIDC_@}"
# A one-shot build gains nothing from incremental caches, which were a third of target/ on disk.
[ -n "$CI" ] && export CARGO_INCREMENTAL=0
started=$SECONDS
step() { log "[$(( (SECONDS - started) / 60 ))m$(( (SECONDS - started) % 60 ))s] $*"; }

# One sealing key for the run: the instances sharing a database open each other's secrets.
sealing_key="$(new_sealing_key)"
# Starts the server the tests built (dev profile; with the release WASM once built):
# start_berth ADDR DB LOG [VAR=VALUE...] (the extra settings of this instance). DB is the
# owner's URL: `server migrate` runs as the owner, then Berth as the runtime role berth_app.
start_berth() {
  local addr="$1" db="$2" log_file="$3" runtime_db
  shift 3
  : >"$log_file"
  runtime_db="$(migrate_as_owner "$db" "$log_file")"
  env DATABASE_URL="$runtime_db" LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_ADDR="$addr" \
    BERTH_DEV_LOGIN=true BERTH_SEED_DEMO=true RUST_LOG=info,sqlx=warn,aws_config=warn,aws_smithy_runtime=warn \
    BERTH_SEALING_KEY="$sealing_key" "$@" target/debug/server >>"$log_file" 2>&1 &
  local pid=$!
  at_exit "kill $pid"
  wait_http "http://$addr/readyz" 120 "$pid" "$log_file" || die "Berth on $addr did not become ready (see $log_file)"
}
only_e2e=false
if [ "${1:-}" = "--e2e" ]; then only_e2e=true; shift; fi

step "installing what is missing"
install_all --for-tests

step "PostgreSQL"
ensure_postgres
export SQLX_OFFLINE=true

if ! $only_e2e; then
step "format"
cargo fmt --all --check

step "local AWS emulator"
start_aws_emulator

# One compilation of every server-side crate and target serves three checks: clippy lints the
# workspace's crates as they compile (-D warnings), the query macros check each query against
# the live schema and write its metadata (compared with the committed .sqlx/ below), and the
# binaries are the ones the tests run and the end-to-end run serves. `frontend` is built on its
# own: in the same run Cargo would unify app's `ssr` and `hydrate` features.
step "build and lint the server side, checking every query against the live schema"
schema_db="$(fresh_database berth_schema)"
apply_migrations "$schema_db"
build_server_side() {
  SQLX_OFFLINE=false DATABASE_URL="$schema_db" SQLX_OFFLINE_DIR="$QUERY_METADATA" build_and_lint_server_side
}
mkdir -p "$QUERY_METADATA"
build_server_side
step "query metadata"
if ! query_metadata_matches; then
  # Only crates that recompiled wrote their metadata; start clean and re-expand every query.
  log "re-checking every query from scratch"
  rm -rf "$QUERY_METADATA" && mkdir -p "$QUERY_METADATA"
  touch $(query_macro_files)
  build_server_side
  query_metadata_matches || die ".sqlx/ is stale: regenerate it with tools/query-metadata.sh (see docs/development.md)"
fi

step "local mail catcher (maildev) for the email tests"
start_maildev

step "unit, database, AWS, Rancher, SSO, webhook and email tests"
rm -f "$LOCAL/bad-input.txt"
with_clippy cargo test --workspace --exclude frontend --no-fail-fast

step "bad input: the figures of the suite that ran above (server/tests/http/bad_input/)"
cat "$LOCAL/bad-input.txt" 2>/dev/null || die "the bad-input suite wrote no figures"

step "API: the OpenAPI document through openapi-spec-validator, a running Berth through schemathesis"
api_db="$(fresh_database berth_api_check)"
start_berth 127.0.0.1:3002 "$api_db" "$LOCAL/api-check-server.log" \
  BERTH_WORKER=false BERTH_API_RATE_PER_MINUTE=1000000 BERTH_API_BURST=100000
BERTH_API_TOKEN="$(DATABASE_URL="$api_db" BERTH_DEV_LOGIN=true BERTH_WORKER=false \
  target/debug/server token sam read,request,decide,operate 1 | tail -n 1)" \
  tools/api-check/run.sh http://127.0.0.1:3002

step "CloudFormation lint and emulator smoke test"
# The smoke test runs moto in-process (mock_aws); keep it off the shared emulator.
env -u AWS_ENDPOINT_URL tools/aws-emulator/lint.sh

step "infrastructure checks (Terraform, Dockerfile, Kubernetes manifests)"
tools/infra/setup.sh
tools/infra/check.sh
else
  start_aws_emulator
  build_and_lint_server_side
fi

step "end-to-end: the release WASM (linted for the browser as it compiles), the identity provider and the Rancher simulator"
build_site true true
# The WASM every first visit loads has a budget (issue 11; docs/benchmarks.md): a page whose code
# should have been a lazy route, or a heavy component on the environment list, shows here.
wasm_gz="$(gzip -9 -c target/site/pkg/"$LEPTOS_OUTPUT_NAME".wasm | wc -c)"
log "the WASM loaded first: $wasm_gz B gzipped (budget 250,000 B)"
[ "$wasm_gz" -le 250000 ] || die "the WASM loaded first is $wasm_gz B gzipped, over its budget of 250,000 B: make the new code a lazy route or lighter (docs/benchmarks.md)"
start_idp
# Rollouts four times faster than the dev stack's: each chart still waits and runs over
# several of the engine's polls, as the live-progress checks need.
RANCHER_SIM_BIN="$ROOT/target/debug/rancher-sim" RANCHER_SIM_SPEED=4 start_rancher_sim
e2e_db="$(fresh_database berth_e2e)"
legacy_db="$(fresh_database berth_e2e_legacy)"
step "end-to-end: starting Berth on 127.0.0.1:3000 (Apps & Marketplace) and 127.0.0.1:3001 (legacy catalog apps), and 127.0.0.1:3003 (single sign-on)"
start_berth 127.0.0.1:3000 "$e2e_db" "$LOCAL/e2e-server.log"
start_berth 127.0.0.1:3001 "$legacy_db" "$LOCAL/e2e-server-legacy.log" BERTH_RANCHER_LEGACY_CATALOG=stable
# Single sign-on through the local provider and no development sign-in, on 3000's database with
# no worker of its own: what people request and approve there, 3000's worker plans and runs.
mapfile -t sso_settings < <(idp_berth_settings http://127.0.0.1:3003)
start_berth 127.0.0.1:3003 "$e2e_db" "$LOCAL/e2e-server-sso.log" \
  BERTH_DEV_LOGIN=false BERTH_SEED_DEMO=false BERTH_WORKER=false "${sso_settings[@]}"
step "end-to-end: Playwright"
(cd end2end && npx playwright test "$@")

step "end-to-end: no secret in the server's log or in stored events and steps"
# The registry password is a secret Berth itself handles; a full run happened above.
for log_file in "$LOCAL/e2e-server.log" "$LOCAL/e2e-server-legacy.log" "$LOCAL/e2e-server-sso.log"; do
  if grep -qF "$BERTH_REGISTRY_PASSWORD" "$log_file"; then
    die "the registry password appears in the server log ($log_file)"
  fi
  if grep -qF "$sealing_key" "$log_file"; then
    die "the sealing key appears in the server log ($log_file)"
  fi
  # The token specs made and used tokens; their secrets are shown once, never logged.
  if grep -qE 'berth_(pat|sat)_[0-9a-f]{64}' "$log_file"; then
    die "an API token's secret appears in the server log ($log_file)"
  fi
done
for db in "$e2e_db" "$legacy_db"; do
  leaks="$(psql -tAq "$db" -v secret="%$BERTH_REGISTRY_PASSWORD%" <<'SQL'
SELECT (SELECT count(*) FROM events WHERE details::text LIKE :'secret')
     + (SELECT count(*) FROM steps WHERE coalesce(output::text, '') || log || coalesce(error, '') LIKE :'secret')
     + (SELECT count(*) FROM runs WHERE coalesce(error, '') LIKE :'secret');
SQL
)"
  [ "$leaks" = "0" ] || die "the registry password appears in $leaks stored events/steps/runs"
  [ "$(psql -tAq "$db" -c "SELECT count(*) FROM runs WHERE status = 'succeeded'")" -ge 1 ] \
    || die "the secret check needs a completed run, and there is none"
done

step "disk used by the build: $(du -sh target 2>/dev/null | cut -f1) (free: $(df -h --output=avail . | tail -1 | tr -d ' '))"
step "all tests passed in $(( (SECONDS - started) / 60 ))m$(( (SECONDS - started) % 60 ))s"
