#!/usr/bin/env bash
# Runs every test: format, lint, offline query metadata, unit and database tests, the AWS,
# Rancher and SSO suites against their local servers, infrastructure checks, and the end-to-end
# browser tests. Installs what is missing first; stops what it started on exit.
#   tools/test.sh          everything (what CI runs)
#   tools/test.sh --e2e    only the end-to-end part, for iterating on it
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
export CI="${CI:-}"
# A one-shot build gains nothing from incremental caches, which were a third of target/ on disk.
[ -n "$CI" ] && export CARGO_INCREMENTAL=0
started=$SECONDS
step() { log "[$(( (SECONDS - started) / 60 ))m$(( (SECONDS - started) % 60 ))s] $*"; }

step "installing what is missing"
install_all

only_e2e=false
[ "${1:-}" = "--e2e" ] && only_e2e=true

step "PostgreSQL"
ensure_postgres
sqlx migrate run --source migrations
export SQLX_OFFLINE=true

if ! $only_e2e; then
step "format"
cargo fmt --all --check

step "query metadata"
# Every query!() has committed offline metadata matching the live schema.
SQLX_OFFLINE=false cargo sqlx prepare --workspace --check -- --all-targets

# `frontend` turns on app's `hydrate` feature; with it in the same cargo run, Cargo would unify
# `ssr` + `hydrate` and the server would misbehave. Each side is linted and tested alone.
step "lint (server side, then the WASM side alone)"
cargo clippy --workspace --exclude frontend --all-targets -- -D warnings
cargo clippy -p frontend -p app --target wasm32-unknown-unknown -- -D warnings

step "local AWS emulator"
start_aws_emulator

step "unit, database, AWS, Rancher and SSO tests"
cargo test --workspace --exclude frontend --no-fail-fast

step "CloudFormation lint and emulator smoke test"
# The smoke test runs moto in-process (mock_aws); keep it off the shared emulator.
env -u AWS_ENDPOINT_URL tools/aws-emulator/lint.sh

step "infrastructure checks (Terraform, Dockerfile, Kubernetes manifests)"
tools/infra/setup.sh
tools/infra/check.sh
else
  start_aws_emulator
fi

step "end-to-end: release build, the local identity provider and the Rancher simulator"
start_idp
start_rancher_sim
cargo leptos build --release
e2e_db="$(fresh_database berth_e2e)"
step "end-to-end: starting Berth on 127.0.0.1:3000"
DATABASE_URL="$e2e_db" LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_ADDR=127.0.0.1:3000 \
  BERTH_DEV_LOGIN=true BERTH_SEED_DEMO=true RUST_LOG=info,sqlx=warn,aws_config=warn,aws_smithy_runtime=warn \
  target/release/server >"$LOCAL/e2e-server.log" 2>&1 &
server=$!
at_exit "kill $server"
for _ in $(seq 1 300); do
  curl -fs http://127.0.0.1:3000/readyz >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$LOCAL/e2e-server.log" >&2; die "Berth exited during start-up"; }
  sleep 0.2
done
curl -fs http://127.0.0.1:3000/readyz >/dev/null || die "Berth did not become ready"
step "end-to-end: Playwright"
(cd end2end && npx playwright test)

step "end-to-end: no secret in the server's log or in stored events and steps"
# The registry password is a secret Berth itself handles; a full run happened above.
if grep -qF "$BERTH_REGISTRY_PASSWORD" "$LOCAL/e2e-server.log"; then
  die "the registry password appears in the server log ($LOCAL/e2e-server.log)"
fi
leaks="$(psql -tAq "$e2e_db" -v secret="%$BERTH_REGISTRY_PASSWORD%" <<'SQL'
SELECT (SELECT count(*) FROM events WHERE details::text LIKE :'secret')
     + (SELECT count(*) FROM steps WHERE coalesce(output::text, '') || log || coalesce(error, '') LIKE :'secret')
     + (SELECT count(*) FROM runs WHERE coalesce(error, '') LIKE :'secret');
SQL
)"
[ "$leaks" = "0" ] || die "the registry password appears in $leaks stored events/steps/runs"
[ "$(psql -tAq "$e2e_db" -c "SELECT count(*) FROM runs WHERE status = 'succeeded'")" -ge 1 ] \
  || die "the secret check needs a completed run, and there is none"

step "disk used by the build: $(du -sh target 2>/dev/null | cut -f1) (free: $(df -h --output=avail . | tail -1 | tr -d ' '))"
step "all tests passed in $(( (SECONDS - started) / 60 ))m$(( (SECONDS - started) % 60 ))s"
