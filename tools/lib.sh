# Shared by tools/run.sh and tools/test.sh: install what is missing (checked by version, so a
# second run costs seconds), start local services, and stop what we started on exit.
# Source it; do not run it.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
mkdir -p "$LOCAL"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"

# Pinned tool versions (see ../shared/docs/toolchain.md for why these). cargo-leptos is not
# needed: tools/build-site.sh runs the same steps with cargo, wasm-bindgen and wasm-opt.
WASM_OPT_VERSION=132
# The local mail catcher (npm maildev; tools/maildev/package.json pins the same version).
MAILDEV_VERSION=3.0.0
# The name the site's files carry (pkg/berth.js, berth.wasm, berth.css). Exported so every build
# bakes it into the server, as cargo-leptos does, and the server needs no setting to find them.
export LEPTOS_OUTPUT_NAME=berth

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# --- cleanup of everything started by this script -------------------------------------------
CLEANUP=()
on_exit() {
  local status=$?
  trap - EXIT INT TERM
  local i
  for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do
    eval "${CLEANUP[$i]}" >/dev/null 2>&1 || true
  done
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
at_exit() { CLEANUP+=("$1"); }

as_root() { [ "$(id -u)" = 0 ]; }
sudo_maybe() { if as_root; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    sudo_maybe apt-get update -qq
    APT_UPDATED=1
  fi
  sudo_maybe env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- system packages -------------------------------------------------------------------------
ensure_system_packages() {
  local missing=()
  # The browser only drives the end-to-end tests: the run command does without it.
  if [ "$INSTALL_FOR_TESTS" = true ]; then command -v chromium >/dev/null || missing+=(chromium); fi
  [ -x "$(pg_bin_dir)/initdb" ] || missing+=(postgresql)
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v curl >/dev/null || missing+=(curl ca-certificates)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt_install "${missing[@]}"
  fi
}

pg_bin_dir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  echo /usr/lib/postgresql/15/bin
}

# --- Rust toolchain pieces -------------------------------------------------------------------
wasm_bindgen_lock_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$ROOT/Cargo.lock"
}

ensure_rust_tools() {
  command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup first (https://rustup.rs)"
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  local wb
  wb="$(wasm_bindgen_lock_version)"
  [ -n "$wb" ] || die "cannot read the wasm-bindgen version from Cargo.lock"
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $wb\$"; then
    log "installing wasm-bindgen-cli $wb (matches Cargo.lock), locked by tools/wasm-bindgen-cli/Cargo.lock"
    # Not the crate's own lock: it pins a yanked webpki-roots, which --locked refuses.
    "$ROOT/tools/wasm-bindgen-cli/install.sh" "$wb"
  fi
  ensure_wasm_split
}

# berth-wasm-split (tools/wasm-split, pinned by its Cargo.lock): cuts the browser's WASM at its
# lazy routes, the step `cargo leptos --split` runs. Installed into .local/ unless that version
# is already on PATH (the Dockerfile installs it in /usr/local/bin); ~2 min the first time.
WASM_SPLIT_DIR="$ROOT/tools/wasm-split"
# Our installed tools come first on PATH for every script, tools/build-site.sh included; what
# `cargo install` puts in cargo's own bin folder (wasm-bindgen) is found even where that folder
# is not on PATH (a CI image with only the toolchain's binaries there).
export PATH="$ROOT/tools/wasm-opt/node_modules/.bin:$LOCAL/wasm-split/bin:$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
ensure_wasm_split() {
  local want
  want="berth-wasm-split $(awk -F'"' '/^version = / { print $2; exit }' "$WASM_SPLIT_DIR/Cargo.toml")"
  if [ "$(berth-wasm-split --version 2>/dev/null)" != "$want" ]; then
    log "installing $want (tools/wasm-split)"
    CARGO_TARGET_DIR="$LOCAL/wasm-split/target" \
      cargo install --locked --quiet --force --path "$WASM_SPLIT_DIR" --root "$LOCAL/wasm-split"
  fi
}

# npm ci into a folder when its lock changed since the last install.
npm_ci() {
  local dir="$1" stamp="$1/node_modules/.berth-lock"
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    log "npm ci in ${dir#"$ROOT"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
}

ensure_node_tools() {
  npm_ci "$ROOT/tools/wasm-opt"
  # Debian's binaryen (108) breaks hydration: the npm one must come first on PATH.
  export PATH="$ROOT/tools/wasm-opt/node_modules/.bin:$PATH"
  wasm-opt --version | grep -q "version $WASM_OPT_VERSION" \
    || die "wasm-opt $WASM_OPT_VERSION expected first on PATH, found: $(wasm-opt --version)"
  if [ "$INSTALL_FOR_TESTS" = true ]; then npm_ci "$ROOT/end2end"; fi
  npm_ci "$ROOT/tools/maildev"
  [ "$("$MAILDEV_BIN" --version 2>/dev/null)" = "$MAILDEV_VERSION" ] \
    || die "maildev $MAILDEV_VERSION expected in tools/maildev, found: $("$MAILDEV_BIN" --version 2>&1 || true)"
  # tools/test-idp/start.sh installs its own packages.
}

# install_all [--for-tests]: what building and running needs; with --for-tests also the browser
# and Playwright.
INSTALL_FOR_TESTS=false
install_all() {
  [ "${1:-}" = "--for-tests" ] && INSTALL_FOR_TESTS=true
  ensure_system_packages
  ensure_rust_tools
  ensure_node_tools
}

# --- building --------------------------------------------------------------------------------
# Runs a cargo command with clippy linting the workspace's crates in the same compilation
# (-D warnings), the way `cargo clippy` does it (clippy-driver as the workspace wrapper), so one
# build both lints and produces the binaries the tests run: no second pass over every crate.
with_clippy() {
  local driver
  driver="$(rustup which clippy-driver 2>/dev/null)" || die "clippy is missing: rustup component add clippy"
  RUSTC_WORKSPACE_WRAPPER="$driver" CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" "$@"
}

# Builds the site into target/site (see tools/build-site.sh): $1 = true for the release WASM
# (wasm-release profile + wasm-opt), $2 = true to lint app + frontend for the browser meanwhile.
# The steps of `cargo leptos build --split`: cargo (frontend/build.rs links with --emit-relocs),
# berth-wasm-split (the main module, plus one .wasm per lazy route and the parts they share,
# their loader and manifest in pkg/), wasm-bindgen on the main module, wasm-opt on every .wasm.
build_site() {
  local release="$1" lint="${2:-false}" profile=dev dir=debug
  if [ "$release" = true ]; then profile=wasm-release dir=wasm-release; fi
  local cargo=(cargo build -p frontend --lib --target wasm32-unknown-unknown --profile "$profile")
  if [ "$lint" = true ]; then with_clippy "${cargo[@]}"; else "${cargo[@]}"; fi
  local target="${CARGO_TARGET_DIR:-$ROOT/target}"
  local site="$target/site" out_dir="$target/wasm32-unknown-unknown/$dir"
  local pkg="$site/pkg" wasm="$out_dir/frontend.wasm" main="$out_dir/frontend_split.wasm"
  # The same WASM through the same tools gives the same pkg/: a warm run keeps it (wasm-opt alone
  # takes a minute and a half).
  local built_from
  built_from="$profile $(sha256sum "$wasm" | cut -d' ' -f1) $(berth-wasm-split --version 2>&1) \
$(wasm-bindgen --version) $(if [ "$release" = true ]; then wasm-opt --version; fi)"
  if [ -f "$pkg/.built-from" ] && [ "$(cat "$pkg/.built-from")" = "$built_from" ]; then
    log "the site's WASM is unchanged since its last build: kept"
    cp "$ROOT/style/main.css" "$pkg/$LEPTOS_OUTPUT_NAME.css"
    cp -r "$ROOT/public/." "$site/"
    return
  fi
  rm -rf "$pkg"
  mkdir -p "$pkg"
  local parts
  parts="$(berth-wasm-split "$wasm" "$pkg" "$LEPTOS_OUTPUT_NAME" "$main")"
  # --keep-lld-exports: the parts import what they share with the main module from its exports.
  wasm-bindgen --target web --no-typescript --keep-lld-exports --no-demangle \
    --out-dir "$pkg" --out-name "$LEPTOS_OUTPUT_NAME" "$main"
  # A server compiled with LEPTOS_OUTPUT_NAME set (ours always are: see the top of this file)
  # asks for berth.wasm, as cargo-leptos names it; wasm-bindgen writes berth_bg.wasm.
  local out="$pkg/$LEPTOS_OUTPUT_NAME.wasm"
  mv "$pkg/${LEPTOS_OUTPUT_NAME}_bg.wasm" "$out"
  if [ "$release" = true ]; then
    wasm-opt --version 2>/dev/null | grep -q "version $WASM_OPT_VERSION" \
      || die "wasm-opt $WASM_OPT_VERSION expected first on PATH (tools/run.sh installs it), found: $(command -v wasm-opt || echo none)"
    # Two at a time (the main module is most of the work).
    printf '%s\n' "$out" $parts | xargs -P 2 -I{} \
      wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int {} -o {}
  fi
  cp "$ROOT/style/main.css" "$pkg/$LEPTOS_OUTPUT_NAME.css"
  cp -r "$ROOT/public/." "$site/"
  printf '%s' "$built_from" >"$pkg/.built-from"
}

# Compiles (and lints) every server-side crate and target in one pass: what `cargo test` runs,
# plus the server and simulator binaries the end-to-end run starts (target/debug/).
build_and_lint_server_side() {
  with_clippy cargo test --workspace --exclude frontend --no-run --lib --bins --tests --benches --examples
}

# --- compile-time checked queries ------------------------------------------------------------
# Where the query macros write each query's metadata while compiling against a live schema.
QUERY_METADATA="$ROOT/target/sqlx-metadata"

# Applies migrations/*.sql in order to a database (for the macros' live schema; the server and
# #[sqlx::test] apply them through sqlx themselves).
apply_migrations() {
  local f
  for f in "$ROOT"/migrations/*.sql; do
    psql -q -v ON_ERROR_STOP=1 --single-transaction "$1" -f "$f" >/dev/null
  done
}

# The source files that hold query macros.
query_macro_files() {
  git -C "$ROOT" grep -lE 'query(_as|_scalar)?(_unchecked)?!|query_file' -- '*.rs'  | sed "s|^|$ROOT/|"
}

# Whether $QUERY_METADATA holds exactly the committed .sqlx/ files.
query_metadata_matches() {
  diff -rq "$ROOT/.sqlx" "$QUERY_METADATA" >/dev/null
}

# A fresh BERTH_SEALING_KEY: 32 random bytes in base64.
new_sealing_key() {
  python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'
}

# The local stack's BERTH_SEALING_KEY, made once and kept in .local/ (readable by its owner
# only), so that the webhook secrets it sealed still open after a restart.
dev_sealing_key() {
  local file="$LOCAL/sealing.key"
  if [ ! -s "$file" ]; then
    mkdir -p "$LOCAL"
    (umask 077 && new_sealing_key >"$file")
  fi
  cat "$file"
}

# Waits until URL answers 2xx: wait_http URL SECONDS [PID [LOG]]. With PID, gives up as soon as
# that process has exited (and prints LOG), instead of waiting out the time.
wait_http() {
  local url="$1" seconds="$2" pid="${3:-}" logfile="${4:-}" i
  for ((i = 0; i < seconds * 5; i++)); do
    curl -fs -o /dev/null --max-time 2 "$url" && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      [ -n "$logfile" ] && tail -n 50 "$logfile" >&2
      return 1
    fi
    sleep 0.2
  done
  return 1
}

# --- PostgreSQL ------------------------------------------------------------------------------
wait_for_port() { # host port seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Sets DATABASE_URL (a superuser-free role with CREATEDB, for #[sqlx::test]) unless given.
ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    log "using DATABASE_URL from the environment"
    return
  fi
  local bin port
  bin="$(pg_bin_dir)"
  if as_root; then
    # As root: the Debian cluster, run by the postgres user.
    local cluster version
    version="$(basename "$(dirname "$bin")")"
    cluster="$(pg_lsclusters -h 2>/dev/null | awk -v v="$version" '$1 == v { print $2; exit }')"
    if [ -z "$cluster" ]; then
      log "creating PostgreSQL $version cluster 'main'"
      pg_createcluster "$version" main >/dev/null
      cluster=main
    fi
    port="$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $3 }')"
    if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $4 }' | grep -q online; then
      log "starting PostgreSQL $version/$cluster on port $port"
      pg_ctlcluster "$version" "$cluster" start
      at_exit "pg_ctlcluster $version $cluster stop -m fast"
    fi
    wait_for_port 127.0.0.1 "$port" 30 || die "PostgreSQL did not start"
    runuser -u postgres -- psql -qAt -p "$port" -c "SELECT 1 FROM pg_roles WHERE rolname = 'berth'" | grep -q 1 \
      || runuser -u postgres -- psql -q -p "$port" -c "CREATE ROLE berth LOGIN CREATEDB PASSWORD 'berth'"
    runuser -u postgres -- psql -qAt -p "$port" -c "SELECT 1 FROM pg_database WHERE datname = 'berth'" | grep -q 1 \
      || runuser -u postgres -- psql -q -p "$port" -c "CREATE DATABASE berth OWNER berth"
    # The runtime role (insert and read only on the audit trail; docs/security.md), which the
    # database tests take on with SET ROLE.
    runuser -u postgres -- psql -qAt -p "$port" -c "SELECT 1 FROM pg_roles WHERE rolname = 'berth_app'" | grep -q 1 \
      || runuser -u postgres -- psql -q -p "$port" -c "CREATE ROLE berth_app LOGIN PASSWORD 'berth_app'; GRANT berth_app TO berth"
  else
    # As a normal user: a project-local cluster, git-ignored.
    local data="$LOCAL/pg/data" sock="$LOCAL/pg/sock"
    port="${BERTH_PG_PORT:-5433}"
    mkdir -p "$sock"
    if [ ! -f "$data/PG_VERSION" ]; then
      log "initialising a project-local PostgreSQL in .local/pg"
      "$bin/initdb" -D "$data" -U berth --auth=trust -E UTF8 >/dev/null
    fi
    if ! "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
      log "starting the project-local PostgreSQL on port $port"
      "$bin/pg_ctl" -D "$data" -l "$LOCAL/pg/log" -w start \
        -o "-p $port -k $sock -c listen_addresses=127.0.0.1" >/dev/null
      at_exit "'$bin/pg_ctl' -D '$data' -m fast stop"
    fi
    psql -qAt -h 127.0.0.1 -p "$port" -U berth postgres -c "SELECT 1 FROM pg_database WHERE datname = 'berth'" | grep -q 1 \
      || psql -q -h 127.0.0.1 -p "$port" -U berth postgres -c "CREATE DATABASE berth"
    psql -qAt -h 127.0.0.1 -p "$port" -U berth postgres -c "SELECT 1 FROM pg_roles WHERE rolname = 'berth_app'" | grep -q 1 \
      || psql -q -h 127.0.0.1 -p "$port" -U berth postgres -c "CREATE ROLE berth_app LOGIN PASSWORD 'berth_app'"
  fi
  export DATABASE_URL="postgres://berth:berth@127.0.0.1:$port/berth"
}

# Replaces one database (for the end-to-end run) with an empty one; prints its URL.
# BERTH_DB_SUFFIX keeps the databases of two checkouts on one server apart.
fresh_database() {
  local name="$1${BERTH_DB_SUFFIX:-}" base="${DATABASE_URL%/*}"
  PGOPTIONS="-c client_min_messages=warning" psql -q "$base/postgres" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
  echo "$base/$name"
}

# Berth's two database roles (docs/security.md, "Database roles"): `server migrate` (the
# target/debug build) as the owner whose URL is given, then Berth runs as the runtime role
# berth_app (ensure_postgres makes it) on the same database. Prints the URL to run Berth with:
# berth_app's, or the owner's when the cluster has no berth_app (a DATABASE_URL given from
# outside). migrate_as_owner OWNER_URL [LOG] (the migration's output; default stderr).
migrate_as_owner() {
  local owner="$1" log_file="${2:-/dev/stderr}" runtime
  runtime="$(printf '%s' "$owner" | sed -E 's#^(postgres(ql)?://)[^@/]*@#\1berth_app:berth_app@#')"
  if [ "$(psql -qAt "$owner" -c "SELECT count(*) FROM pg_roles WHERE rolname = 'berth_app'")" != 1 ]; then
    log "no database role berth_app here: Berth runs as the owner of the tables"
    runtime="$owner"
  fi
  if ! env BERTH_MIGRATE_DATABASE_URL="$owner" DATABASE_URL="$runtime" BERTH_WORKER=false \
    "$ROOT/target/debug/server" migrate >>"$log_file" 2>&1; then
    [ -f "$log_file" ] && tail -n 20 "$log_file" >&2
    die "server migrate failed"
  fi
  printf '%s\n' "$runtime"
}

# --- other local services --------------------------------------------------------------------
AWS_EMULATOR_PORT="${AWS_EMULATOR_PORT:-5055}"
start_aws_emulator() {
  "$ROOT/tools/aws-emulator/setup.sh"
  local pid
  pid="$("$ROOT/tools/aws-emulator/start.sh" "$AWS_EMULATOR_PORT")"
  at_exit "kill $pid"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$AWS_EMULATOR_PORT" AWS_REGION="${AWS_REGION:-eu-central-1}" \
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
}

RANCHER_SIM_ADDR="${RANCHER_SIM_ADDR:-127.0.0.1:8444}"
start_rancher_sim() {
  # RANCHER_SIM_BIN: a simulator binary already built (the test command's build has one).
  local bin="${RANCHER_SIM_BIN:-}"
  if [ -z "$bin" ]; then
    cargo build -q -p berth-rancher-sim --bin rancher-sim
    bin="$ROOT/target/debug/rancher-sim"
  fi
  # --legacy: it also serves the legacy catalog apps API, for a worker started with
  # BERTH_RANCHER_LEGACY_CATALOG=stable (the end-to-end run starts one of each).
  # RANCHER_SIM_SPEED: rollouts that many times faster than realistic (the end-to-end run).
  "$bin" --addr "$RANCHER_SIM_ADDR" --seed insight --legacy --speed "${RANCHER_SIM_SPEED:-1}" \
    >"$LOCAL/rancher-sim.log" 2>&1 &
  local pid=$!
  at_exit "kill $pid"
  wait_for_port "${RANCHER_SIM_ADDR%:*}" "${RANCHER_SIM_ADDR##*:}" 30 || die "the Rancher simulator did not start (see .local/rancher-sim.log)"
  export BERTH_RANCHER_URL="http://$RANCHER_SIM_ADDR" BERTH_RANCHER_TOKEN="token-berth:simulatorsecret"
  # What the provisioning worker deploys with locally (the simulator's cluster; demo registry
  # credentials, stored in each unit's registry secret in the emulator).
  export BERTH_RANCHER_CLUSTER="${BERTH_RANCHER_CLUSTER:-berth}" BERTH_RANCHER_POLL_MS="${BERTH_RANCHER_POLL_MS:-250}" \
    BERTH_DOMAIN="${BERTH_DOMAIN:-apps.berth.localhost}" \
    BERTH_REGISTRY_SERVER="${BERTH_REGISTRY_SERVER:-registry.berth.localhost}" \
    BERTH_REGISTRY_USERNAME="${BERTH_REGISTRY_USERNAME:-berth-pull}" \
    BERTH_REGISTRY_PASSWORD="${BERTH_REGISTRY_PASSWORD:-local-demo-registry-password}" \
    BERTH_ENGINE_POLL_MS="${BERTH_ENGINE_POLL_MS:-250}"
}

# The local mail catcher: SMTP on MAILDEV_SMTP_PORT, its inbox (web page, and REST API: `GET
# /api/email`) on MAILDEV_WEB_PORT, both on loopback; mail kept in .local/maildev. Exports
# MAILDEV_SMTP_URL and MAILDEV_URL (the email tests read them).
MAILDEV_BIN="$ROOT/tools/maildev/node_modules/.bin/maildev"
MAILDEV_SMTP_PORT="${MAILDEV_SMTP_PORT:-1025}"
MAILDEV_WEB_PORT="${MAILDEV_WEB_PORT:-1080}"
start_maildev() {
  local port
  for port in "$MAILDEV_SMTP_PORT" "$MAILDEV_WEB_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port $port is taken (another maildev?); set MAILDEV_SMTP_PORT and MAILDEV_WEB_PORT to free ones"
    fi
  done
  mkdir -p "$LOCAL/maildev"
  "$MAILDEV_BIN" --ip 127.0.0.1 --smtp "$MAILDEV_SMTP_PORT" --web-ip 127.0.0.1 --web "$MAILDEV_WEB_PORT" \
    --mail-directory "$LOCAL/maildev" >"$LOCAL/maildev.log" 2>&1 &
  local pid=$!
  at_exit "kill $pid"
  export MAILDEV_SMTP_URL="smtp://127.0.0.1:$MAILDEV_SMTP_PORT" MAILDEV_URL="http://127.0.0.1:$MAILDEV_WEB_PORT"
  wait_http "$MAILDEV_URL/api/healthz" 30 "$pid" "$LOCAL/maildev.log" \
    || die "maildev did not start on ports $MAILDEV_SMTP_PORT/$MAILDEV_WEB_PORT (see .local/maildev.log)"
}

IDP_PORT="${IDP_PORT:-4444}"
# The Berth servers the local provider sends people back to (space-separated origins): the one
# tools/run.sh starts and the end-to-end run's single sign-on server.
IDP_BERTH_ORIGINS="${IDP_BERTH_ORIGINS:-http://127.0.0.1:3000 http://127.0.0.1:3003}"
# Starts the local OpenID Connect provider (tools/test-idp), accepting the callback and the
# post-logout address of every origin in IDP_BERTH_ORIGINS. Berth's settings for it:
# idp_berth_settings.
start_idp() {
  local pid origin redirects="" logouts=""
  for origin in $IDP_BERTH_ORIGINS; do
    redirects+="${redirects:+,}$origin/auth/callback"
    logouts+="${logouts:+,}$origin/"
  done
  pid="$(IDP_REDIRECT_URIS="$redirects" IDP_POST_LOGOUT_REDIRECT_URIS="$logouts" \
    "$ROOT/tools/test-idp/start.sh" "$IDP_PORT" | tail -n 1)"
  at_exit "kill $pid"
}
# idp_berth_settings ORIGIN: the single sign-on settings of the Berth at ORIGIN for the local
# provider, one VAR=VALUE a line (read them into an array for `env` or `export`). The callback
# is each server's own; a server with these never has the development sign-in (config.rs).
idp_berth_settings() {
  printf '%s\n' "BERTH_OIDC_ISSUER=http://127.0.0.1:$IDP_PORT" \
    BERTH_OIDC_CLIENT_ID=berth-local BERTH_OIDC_CLIENT_SECRET=berth-local-secret \
    "BERTH_OIDC_REDIRECT_URL=$1/auth/callback" \
    "BERTH_OIDC_SCOPES=openid profile email groups" \
    "BERTH_OIDC_ROLE_MAP=berth-managers=manager;berth-admins=admin;berth-auditors=auditor"
}
