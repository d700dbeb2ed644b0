#!/usr/bin/env bash
# Provisioning benchmark (figures, not a test; recorded in docs/engine.md): N environments at
# once through the real Provisioner — the AWS stage against the local emulator (started here,
# on its own port, and stopped on exit), the Rancher stage against the simulator in the bench
# process with a fixed latency per API call. Prints wall time, each run's critical path from its
# own measured steps, their ratio, the sequential (seed) time, CPU per run and the simulator's
# call counts. See crates/provisioner/benches/provision.rs for the knobs.
#
#   tools/bench-engine.sh                          50 environments, 50 ms per Rancher call
#   BENCH_REAL_RUNS=20 BENCH_SIM_LATENCY_MS=100 tools/bench-engine.sh
#   tools/bench-engine.sh --claim                  also the engine-only claim/critical-path bench
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

AWS_EMULATOR_PORT="${BENCH_AWS_EMULATOR_PORT:-5056}"
ensure_postgres
log "starting the AWS emulator on port $AWS_EMULATOR_PORT"
start_aws_emulator

export BENCH_REAL_RUNS="${BENCH_REAL_RUNS:-50}" BENCH_SIM_LATENCY_MS="${BENCH_SIM_LATENCY_MS:-50}"
export SQLX_OFFLINE=true
log "provisioning $BENCH_REAL_RUNS environments at once (cargo bench, release)"
cargo bench -q -p berth-provisioner --bench provision
if [ "${1:-}" = "--claim" ]; then
  log "engine-only bench: claim throughput and critical path with sleeping steps"
  cargo bench -q -p berth-runs --bench claim
fi
