#!/usr/bin/env bash
# The auditors' history at scale (figures, not a test; recorded in docs/benchmarks.md):
# seeds 10,000 environments and 1,000,000 events into a fresh database, starts the release
# server on loopback, signs in through the development sign-in, and measures the environment
# list, the auditors' view, timeline pages and an export over HTTP with wrk (p50, p99, req/s);
# then the same list over the API with a bearer token, and the token check alone (whoami).
#
#   tools/bench-history.sh              build the release server if needed, seed, measure
#   BENCH_SECONDS=30 BENCH_CONNECTIONS="1 4 8" tools/bench-history.sh
#
# Every request goes to 127.0.0.1 only; each wrk run is bounded by BENCH_SECONDS.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_postgres
command -v wrk >/dev/null || apt_install wrk

SECONDS_PER_RUN="${BENCH_SECONDS:-20}"
CONNECTIONS="${BENCH_CONNECTIONS:-1 4}"
PORT="${BENCH_PORT:-3098}"
BASE="http://127.0.0.1:$PORT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

log "release build of the server (SSR only; the browser bundle is not needed to time pages)"
SQLX_OFFLINE=true cargo build -q --release -p server
server_bin="$TARGET_DIR/release/server"

db="$(fresh_database berth_bench_history)"
site="$(mktemp -d)"
at_exit "rm -rf '$site'"
DATABASE_URL="$db" LEPTOS_OUTPUT_NAME=berth LEPTOS_SITE_ROOT="$site" LEPTOS_SITE_ADDR="127.0.0.1:$PORT" \
  BERTH_DEV_LOGIN=true BERTH_SEED_DEMO=true BERTH_WORKER=false BERTH_API_RATE_PER_MINUTE=100000000 \
  BERTH_API_BURST=1000000 RUST_LOG=warn "$server_bin" >"$LOCAL/bench-history.log" 2>&1 &
pid=$!
at_exit "kill $pid"
wait_http "$BASE/readyz" 60 "$pid" "$LOCAL/bench-history.log" || die "the server did not start"

log "seeding 10,000 environments and 1,000,000 events"
start=$SECONDS
psql -q -v ON_ERROR_STOP=1 "$db" <<'SQL'
-- Every environment has one create request (status as its environment), a run when it got that
-- far, and exactly 100 events: the request's story, then runs and steps with some failures.
CREATE TEMP TABLE seed AS
SELECT n,
       md5('env' || n)::uuid AS env_id,
       md5('req' || n)::uuid AS req_id,
       md5('run' || n)::uuid AS run_id,
       (ARRAY['submitted', 'approved', 'rejected', 'withdrawn', 'provisioning', 'ready', 'ready',
              'ready', 'failed', 'ready'])[1 + n % 10] AS status,
       now() - make_interval(days => n % 365, secs => n) AS born
FROM generate_series(1, 10000) n;

INSERT INTO environments (id, company_id, name, slug, owner_contact, blueprint, size, status,
                          created_by, created_at, updated_at)
SELECT s.env_id, c.id, 'Unit ' || lpad(s.n::text, 5, '0'), 'unit-' || lpad(s.n::text, 5, '0'),
       'owner@seaview.example', 'insight', (ARRAY['small', 'medium', 'large'])[1 + s.n % 3],
       s.status, m.id, s.born, s.born + interval '100 minutes'
FROM seed s, companies c, users m
WHERE m.subject = 'maria';

INSERT INTO requests (id, environment_id, kind, spec, status, requested_by, created_at,
                      decided_by, decided_at, decision_note)
SELECT s.req_id, s.env_id, 'create',
       jsonb_build_object('name', 'Unit ' || lpad(s.n::text, 5, '0'),
                          'slug', 'unit-' || lpad(s.n::text, 5, '0'), 'description', '',
                          'owner_contact', 'owner@seaview.example', 'blueprint', 'insight',
                          'size', (ARRAY['small', 'medium', 'large'])[1 + s.n % 3]),
       s.status, m.id, s.born,
       CASE WHEN s.status IN ('submitted', 'withdrawn') THEN NULL ELSE a.id END,
       CASE WHEN s.status IN ('submitted', 'withdrawn') THEN NULL ELSE s.born + interval '1 minute' END,
       CASE WHEN s.status = 'rejected' THEN 'Not this quarter.' END
FROM seed s, users m, users a
WHERE m.subject = 'maria' AND a.subject = 'ada';

INSERT INTO runs (id, environment_id, request_id, blueprint, blueprint_version, status,
                  created_at, started_at, finished_at, error)
SELECT s.run_id, s.env_id, s.req_id, 'insight', '2026.11.1',
       CASE s.status WHEN 'provisioning' THEN 'running' WHEN 'ready' THEN 'succeeded' ELSE 'failed' END,
       s.born + interval '2 minutes', s.born + interval '2 minutes',
       CASE WHEN s.status = 'provisioning' THEN NULL ELSE s.born + interval '99 minutes' END,
       CASE WHEN s.status = 'failed' THEN 'chart:dsm: timed out' END
FROM seed s WHERE s.status IN ('provisioning', 'ready', 'failed');

INSERT INTO events (environment_id, request_id, actor_id, kind, details, created_at)
SELECT s.env_id, s.req_id,
       CASE WHEN e.i = 1 THEN m.id WHEN e.i = 2 THEN a.id END,
       CASE WHEN e.i = 1 THEN 'request.submitted'
            WHEN e.i = 2 THEN 'request.approved'
            WHEN e.i = 3 THEN 'run.enqueued'
            WHEN e.i = 4 THEN 'run.started'
            WHEN e.i = 100 THEN 'run.succeeded'
            WHEN e.i % 12 = 0 THEN 'step.retrying'
            WHEN e.i % 2 = 0 THEN 'step.started'
            ELSE 'step.succeeded' END,
       CASE WHEN e.i = 1 THEN jsonb_build_object('kind', 'create', 'spec',
                                jsonb_build_object('name', 'Unit ' || s.n, 'slug', 'unit-' || s.n,
                                                   'blueprint', 'insight', 'size', 'small'))
            WHEN e.i = 2 THEN jsonb_build_object('note', 'Approved.')
            WHEN e.i <= 4 OR e.i = 100 THEN jsonb_build_object('run_id', s.run_id,
                                                                'blueprint_version', '2026.11.1')
            ELSE jsonb_build_object('run_id', s.run_id, 'step', 'chart:app-' || (e.i / 2),
                                    'attempt', 1 + e.i % 3)
       END,
       s.born + make_interval(mins => e.i)
FROM seed s CROSS JOIN generate_series(1, 100) AS e(i), users m, users a
WHERE m.subject = 'maria' AND a.subject = 'ada'
-- Each environment's story in order (the timeline lists by id), the environments interleaved
-- at random: no environment's events sit together on disk (the worst case for timeline pages;
-- the application writes them interleaved in time order).
ORDER BY e.i, random();
SQL
psql -q "$db" -c "VACUUM ANALYZE environments, requests, runs, events, users"
echo "seeded in $((SECONDS - start)) s: $(psql -qAt "$db" -c "SELECT (SELECT count(*) FROM environments) || ' environments, ' || (SELECT count(*) FROM events) || ' events'")"

# A middle-of-the-list environment for timeline pages.
env="$(psql -qAt "$db" -c "SELECT id FROM environments WHERE slug = 'unit-05005'")"
# Page 100 of the list and of the auditors' view (both most recently changed first): the page
# after the 4,950th environment, reached by its keyset cursor `<updated_at in unix µs>.<id>`
# (the token of app/src/api/paging.rs), as a reader following "Next" 99 times would.
page100="$(psql -qAt "$db" -c "SELECT (extract(epoch FROM updated_at) * 1000000)::bigint || '.' || id
                                FROM environments ORDER BY updated_at DESC, id OFFSET 4949 LIMIT 1")"
IFS='|' read -r p100_at p100_id <<<"$(psql -qAt -F '|' "$db" -c "SELECT updated_at, id FROM environments
                                ORDER BY updated_at DESC, id OFFSET 4949 LIMIT 1")"
auditor="$(psql -qAt "$db" -c "SELECT id FROM users WHERE subject = 'audrey'")"

jar="$(mktemp)"
at_exit "rm -f '$jar'"
curl -fs -c "$jar" -o /dev/null -H 'sec-fetch-site: same-origin' \
  --data "user_id=$auditor" "$BASE/auth/dev-login"
cookie="$(awk '$6 ~ /berth.sid/ { print $6 "=" $7 }' "$jar")"
[ -n "$cookie" ] || die "development sign-in failed"

# EXPLAIN ANALYZE of the queries behind the pages, for the record.
log "query plans"
company="$(psql -qAt "$db" -c "SELECT id FROM companies LIMIT 1")"
psql -q "$db" <<SQL
\echo '--- timeline page (first 51 events of one environment, every kind)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
SELECT e.id, u.display_name, e.kind, e.details, e.created_at
FROM events e LEFT JOIN users u ON u.id = e.actor_id
WHERE e.environment_id = '$env' AND e.id > 0
  AND (cardinality('{}'::text[]) + cardinality('{}'::text[]) = 0 OR e.kind = ANY('{}') OR e.kind LIKE ANY('{}'))
ORDER BY e.id LIMIT 51;
\echo '--- auditors view, page 100 (keyset cursor after the 4,950th environment)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)
SELECT e.id, r.kind, run.status, last.kind, counted.n
FROM (SELECT * FROM environments e WHERE e.company_id = '$company'
        AND e.updated_at <= '$p100_at' AND (e.updated_at < '$p100_at' OR e.id > '$p100_id')
      ORDER BY e.updated_at DESC, e.id LIMIT 51) e
LEFT JOIN LATERAL (SELECT kind FROM requests WHERE environment_id = e.id
                   ORDER BY created_at DESC, id DESC LIMIT 1) r ON true
LEFT JOIN LATERAL (SELECT status FROM runs WHERE environment_id = e.id
                   ORDER BY created_at DESC, id DESC LIMIT 1) run ON true
LEFT JOIN LATERAL (SELECT kind FROM events WHERE environment_id = e.id ORDER BY id DESC LIMIT 1) last ON true
CROSS JOIN LATERAL (SELECT count(*) AS n FROM events WHERE environment_id = e.id) counted
ORDER BY e.updated_at DESC, e.id;
SQL

# The pages are read signed in (the session cookie); the API with a bearer token.
header="Cookie: $cookie"
token="$(DATABASE_URL="$db" BERTH_DEV_LOGIN=true BERTH_WORKER=false "$server_bin" token maria read 1 | tail -n 1)"
measure() { # label path connections
  local out p50 p99 rps shown
  out="$(wrk -t1 -c"$3" -d"${SECONDS_PER_RUN}s" --latency -H "$header" "$BASE$2")"
  p50="$(awk '$1 == "50%" { print $2 }' <<<"$out")"
  p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
  rps="$(awk '/Requests\/sec/ { print $2 }' <<<"$out")"
  if grep -q "Non-2xx" <<<"$out"; then die "$1: non-2xx answers: $out"; fi
  shown="${2//$env/{id\}}"
  shown="${shown//$page100/{cursor\}}"
  printf '| %s | `%s` | %s | %s | %s | %s |\n' "$1" "$shown" "$3" "$p50" "$p99" "$rps"
}

# Each page must really be the page (signed in, data present) before it is timed.
check() { # path text-that-must-be-there
  local body status
  body="$(mktemp)"
  status="$(curl -s -o "$body" -w '%{http_code}' -H "$header" "$BASE$1")"
  if [ "$status" != 200 ] || ! grep -q "$2" "$body"; then
    head -c 2000 "$body" >&2
    die "$1 answered $status without '$2'"
  fi
  rm -f "$body"
}
check "/environments/$env" 'data-kind="request.submitted"'
check "/audit" 'audit-environments'
check "/" 'Unit 0'
check "/?after=$page100" 'rel="prev"'
check "/audit?after=$page100" 'rel="prev"'
header="Authorization: Bearer $token"
check "/api/v1/environments?after=$page100" '"previous"'
check "/api/v1/whoami" '"Maria Manager"'
header="Cookie: $cookie"

log "wrk: ${SECONDS_PER_RUN}s per page and connection count, 1 thread, $(nproc) cores shared with PostgreSQL and the server"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| page | path | connections | p50 | p99 | req/s |"
echo "|---|---|---|---|---|---|"
for c in $CONNECTIONS; do
  measure "environment list" "/" "$c"
  measure "environment list, search" "/?q=unit-05" "$c"
  measure "environment list, page 100" "/?after=$page100" "$c"
  measure "auditors' view, page 1" "/audit" "$c"
  measure "auditors' view, page 100" "/audit?after=$page100" "$c"
  measure "timeline, first page" "/environments/$env" "$c"
  measure "timeline, newest steps" "/environments/$env?kind=steps&page=latest" "$c"
  # One person runs at most three downloads at once (a fourth answers 429; docs/security.md).
  measure "history export (JSON, 100 events)" "/environments/$env/history.json" "$((c < 3 ? c : 3))"
  header="Authorization: Bearer $token"
  measure "API: environments, first page (50)" "/api/v1/environments" "$c"
  measure "API: environments, page 100" "/api/v1/environments?after=$page100" "$c"
  measure "API: whoami (the token check alone)" "/api/v1/whoami" "$c"
  measure "health (no token, no database)" "/healthz" "$c"
  header="Cookie: $cookie"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server RSS after the runs: $(awk '/VmRSS/ { print $2, $3 }' "/proc/$pid/status")"
