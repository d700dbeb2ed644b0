#!/usr/bin/env bash
# Starts Berth's local AWS emulator (moto + berth_moto_ext) on 127.0.0.1:PORT (default 5055),
# waits until it answers, and prints its pid on stdout. The caller stops it: kill <pid>.
# Log: .local/aws-emulator-PORT.log. Refuses to start when the port is already taken.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$ROOT/tools/lib.sh"
PORT="${1:-${BERTH_AWS_EMULATOR_PORT:-5055}}"
HOST=127.0.0.1
URL="http://$HOST:$PORT"

VENV="$("$HERE/setup.sh")"

if curl -s -o /dev/null --max-time 2 "$URL/"; then
    echo "aws emulator: something already listens on $URL; stop it or choose another port" >&2
    exit 1
fi

LOG="$ROOT/.local/aws-emulator-$PORT.log"
mkdir -p "$ROOT/.local"
# Our own process group, so that the caller's Ctrl-C does not reach it before it stops it.
setsid "$VENV/bin/python" "$HERE/berth_emulator.py" -H "$HOST" -p "$PORT" </dev/null >"$LOG" 2>&1 &
PID=$!

if wait_http "$URL/moto-api/" 30 "$PID" "$LOG"; then
    echo "aws emulator: ready at $URL (pid $PID, log $LOG)" >&2
    echo "$PID"
    exit 0
fi
echo "aws emulator: no answer from $URL/moto-api/ (exited, or none after 30 s); stopping pid $PID" >&2
kill "$PID" 2>/dev/null || true
exit 1
