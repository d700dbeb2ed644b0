#!/usr/bin/env bash
# Installs what is missing, starts the whole local stack (PostgreSQL, AWS emulator, Rancher
# simulator, mail catcher, the local identity provider) and Berth with the demo accounts, and
# stops everything on exit or Ctrl-C. People sign in through single sign-on at the local
# provider; `BERTH_DEV_LOGIN=true tools/run.sh` gives the one-click development sign-in instead
# (no provider then: Berth refuses to run with both).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

install_all
ensure_postgres
export SQLX_OFFLINE=true

# The emulator's Python venv installs from the network while cargo uses the cores.
"$ROOT/tools/aws-emulator/setup.sh" >"$LOCAL/aws-emulator-setup.log" 2>&1 &
venv_setup=$!
log "building Berth (the first build takes a few minutes)"
# The server and the simulator in one cargo run (one feature resolution, no rebuild between
# them), then a dev WASM (no wasm-opt: quick; tools/build-site.sh --release for the small one).
cargo build -p server -p berth-rancher-sim --bins
build_site false

wait "$venv_setup" || die "the AWS emulator's tools did not install (see .local/aws-emulator-setup.log)"
start_aws_emulator
RANCHER_SIM_BIN="$ROOT/target/debug/rancher-sim" start_rancher_sim
start_maildev

export LEPTOS_SITE_ADDR="${LEPTOS_SITE_ADDR:-127.0.0.1:3000}"
export BERTH_PUBLIC_URL="${BERTH_PUBLIC_URL:-http://$LEPTOS_SITE_ADDR}"
# One way to sign in: single sign-on through the local provider, or (BERTH_DEV_LOGIN=true) the
# development sign-in with the seeded demo people.
case "${BERTH_DEV_LOGIN:-false}" in
  1 | true | yes | on) dev_login=true ;;
  *) dev_login=false ;;
esac
export BERTH_DEV_LOGIN="$dev_login"
if ! $dev_login; then
  IDP_BERTH_ORIGINS="$BERTH_PUBLIC_URL" start_idp
  mapfile -t sso_settings < <(idp_berth_settings "$BERTH_PUBLIC_URL")
  export "${sso_settings[@]}"
fi
export BERTH_SEED_DEMO="${BERTH_SEED_DEMO:-$dev_login}"
export RUST_LOG="${RUST_LOG:-info,sqlx=warn}"
# Email goes to the local catcher; webhooks may go to receivers on this machine.
export BERTH_SMTP_URL="${BERTH_SMTP_URL:-$MAILDEV_SMTP_URL}" BERTH_MAIL_FROM="${BERTH_MAIL_FROM:-Berth <berth@berth.localhost>}"
export BERTH_WEBHOOKS_ALLOW_PRIVATE="${BERTH_WEBHOOKS_ALLOW_PRIVATE:-true}"
# Webhook signing secrets are sealed with a key kept in .local/ across restarts.
export BERTH_SEALING_KEY="${BERTH_SEALING_KEY:-$(dev_sealing_key)}"
# The demo people, from the file the identity provider serves (tools/test-idp/users.json):
# with their provider passwords, or (argument "names") as the development sign-in lists them.
demo_accounts() {
  python3 - "$ROOT/tools/test-idp/users.json" "${1:-passwords}" <<'PY'
import json, sys
for login, u in json.load(open(sys.argv[1]))["users"].items():
    groups = ", ".join(g.removeprefix("berth-") for g in u["groups"]) or "no role"
    if sys.argv[2] == "names":
        print(f"{'':25}{u['name']:<24}({groups})")
    else:
        print(f"{'':25}{login + ' / ' + u['password']:<24}{u['name']} ({groups})")
PY
}
if $dev_login; then
  sign_in="development sign-in, one click, no password (no single sign-on):
$(demo_accounts names)
                       (without BERTH_DEV_LOGIN=true: single sign-on through a local provider)"
else
  sign_in="single sign-on through the local identity provider ($BERTH_OIDC_ISSUER):
$(demo_accounts)
                       (BERTH_DEV_LOGIN=true tools/run.sh: one-click development sign-in instead)"
fi
# Migrations as the owner (ensure_postgres's berth), then Berth as the runtime role berth_app,
# which may only insert and read the audit trail (docs/security.md, "Database roles").
owner_database_url="$DATABASE_URL"
DATABASE_URL="$(migrate_as_owner "$owner_database_url")"
export DATABASE_URL
cat >&2 <<MSG

  Berth:               http://$LEPTOS_SITE_ADDR
  Sign in:             http://$LEPTOS_SITE_ADDR/login
                       $sign_in
  PostgreSQL:          $DATABASE_URL (migrations: $owner_database_url)
  AWS emulator:        $AWS_ENDPOINT_URL
  Rancher simulator:   $BERTH_RANCHER_URL
  Mail catcher:        $MAILDEV_URL (every email Berth sends lands here)
  Stop everything:     Ctrl-C

MSG
LEPTOS_SITE_ROOT=target/site target/debug/server &
server=$!
at_exit "kill $server"
wait "$server"
