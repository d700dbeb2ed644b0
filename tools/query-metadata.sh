#!/usr/bin/env bash
# Regenerates the offline query metadata in .sqlx/ after a query or a migration changed: every
# query macro is compiled against a freshly migrated database and writes its own file, so
# entries of removed queries disappear. (`cargo sqlx prepare --workspace -- --all-targets` does
# the same for those who install sqlx-cli.) tools/test.sh fails when .sqlx/ is stale.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_postgres
db="$(fresh_database berth_schema)"
apply_migrations "$db"
rm -rf .sqlx && mkdir .sqlx
# Recompile every file with a query so each macro runs again (unchanged crates would not).
touch $(query_macro_files)
SQLX_OFFLINE=false DATABASE_URL="$db" SQLX_OFFLINE_DIR="$ROOT/.sqlx" \
  cargo check --workspace --exclude frontend --all-targets
log ".sqlx/ now holds $(find .sqlx -name 'query-*.json' | wc -l) queries; commit it"
