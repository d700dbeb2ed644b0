#!/usr/bin/env python3
"""Live-progress streams at scale (run by tools/bench-streams.sh, which starts the server).

Opens server-sent-event streams on one environment over many development sign-in sessions
(10 per session, the server's cap), in steps (e.g. 10, 100, 1,000 streams), and at each step:
the server's RSS (/proc/PID/status), then K changes of that environment (one event inserted
each with psql, as the engine would write it) and the queries the server sent meanwhile: sqlx
logs every statement it runs (target `sqlx::query`, level debug), so the server's own log
counts them, grouped by statement. The same K changes with no stream open are the baseline
(anything the server does in the background). Each stream must receive every change.

Standard library only (asyncio streams): no aiohttp needed.
"""

import asyncio
import collections
import json
import os
import re
import subprocess
import sys
import time

HOST = "127.0.0.1"
PORT = int(os.environ["BENCH_PORT"])
PID = int(os.environ["BENCH_SERVER_PID"])
DB = os.environ["BENCH_DB"]  # the bench database's URL
LOG = os.environ["BENCH_SERVER_LOG"]  # the server's log, RUST_LOG with sqlx::query=debug
ENV = os.environ["BENCH_ENVIRONMENT"]
REQUEST = os.environ["BENCH_REQUEST"]
USERS = os.environ["BENCH_USERS"].split()
STEPS = [int(n) for n in os.environ.get("BENCH_STREAMS", "10 100 1000").split()]
CHANGES = int(os.environ.get("BENCH_CHANGES", "20"))
PER_SESSION = int(os.environ.get("BENCH_PER_SESSION", "10"))
# Quiet time before and after the changes (trailing reads of the last change land in it).
SETTLE = float(os.environ.get("BENCH_SETTLE", "2"))
GAP = float(os.environ.get("BENCH_CHANGE_GAP", "0.5"))  # > the hub's 150 ms coalescing


def psql(url, sql):
    out = subprocess.run(
        ["psql", "-qAtX", url, "-c", sql], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def rss():
    fields = {}
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields["VmRSS"], fields["VmHWM"], fields["Threads"]


def mb(kb_field):
    return int(kb_field.split()[0]) / 1024


def log_offset():
    return os.path.getsize(LOG)


def queries_since(offset):
    """The server's queries logged since `offset` (sqlx logs each at debug, target sqlx::query),
    counted by their summary (the statement's first words)."""
    counts = collections.Counter()
    with open(LOG, "rb") as f:
        f.seek(offset)
        for line in f:
            if b"sqlx::query" not in line:
                continue
            line = re.sub(rb"\x1b\[[0-9;]*m", b"", line)
            m = re.search(rb'summary="((?:[^"\\]|\\.)*)"', line)
            counts[m.group(1).decode(errors="replace") if m else "?"] += 1
    return counts


async def http(method, path, body=b"", headers=()):
    reader, writer = await asyncio.open_connection(HOST, PORT)
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nConnection: close\r\n"
    for h in headers:
        head += h + "\r\n"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


async def sign_in(user_id):
    answer = await http(
        "POST",
        "/auth/dev-login",
        f"user_id={user_id}".encode(),
        ["Content-Type: application/x-www-form-urlencoded", "Sec-Fetch-Site: same-origin"],
    )
    m = re.search(rb"(?im)^set-cookie: *((?:__Host-)?berth\.sid=[^;\r\n]+)", answer)
    if not m:
        sys.exit(f"development sign-in failed: {answer[:300]!r}")
    return m.group(1).decode()


class Stream:
    """One open SSE stream, its chunked body decoded, counting `progress` events."""

    def __init__(self):
        self.events = 0
        self.first = asyncio.Event()
        self.changed = asyncio.Condition()

    async def open(self, cookie):
        reader, writer = await asyncio.open_connection(HOST, PORT)
        self.writer = writer
        writer.write(
            (
                f"GET /environments/{ENV}/progress HTTP/1.1\r\nHost: {HOST}:{PORT}\r\n"
                f"Cookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            rest = await reader.read(500)
            raise RuntimeError(f"stream refused: {status!r} {rest!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.task = asyncio.create_task(self.read(reader))

    async def read(self, reader):
        text = b""
        while True:
            size = await reader.readline()
            if not size:
                return
            n = int(size.strip() or b"0", 16)
            if n == 0:
                return
            text += await reader.readexactly(n)
            await reader.readexactly(2)
            # Events end with a blank line; count whole events only.
            while b"\n\n" in text:
                event, text = text.split(b"\n\n", 1)
                if b"event: progress" in event:
                    self.events += 1
                    self.first.set()
                    async with self.changed:
                        self.changed.notify_all()

    async def wait_for(self, count, timeout):
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: self.events >= count), timeout)

    def close(self):
        self.task.cancel()
        self.writer.close()


async def changes(k):
    """K changes of the environment, GAP apart; the time the last was committed."""
    for i in range(k):
        if i:
            await asyncio.sleep(GAP)
        note = json.dumps({"note": f"bench change {i}"})
        await asyncio.to_thread(
            psql,
            DB,
            "INSERT INTO events (environment_id, request_id, kind, details) "
            f"VALUES ('{ENV}', '{REQUEST}', 'request.note', '{note}'::jsonb)",
        )
    return time.monotonic()


async def measure(streams):
    """K changes; the server's queries meanwhile, and whether every stream saw each change."""
    await asyncio.sleep(SETTLE)
    before_events = [s.events for s in streams]
    offset = log_offset()
    committed = await changes(CHANGES)
    waits = [s.wait_for(b + CHANGES, 30) for s, b in zip(streams, before_events)]
    results = await asyncio.gather(*waits, return_exceptions=True)
    last = time.monotonic() - committed
    await asyncio.sleep(SETTLE)
    counts = queries_since(offset)
    missing = sum(1 for r in results if isinstance(r, Exception))
    return counts, last, missing


def breakdown(counts):
    return "; ".join(f"{n} × {q[:60]}" for q, n in counts.most_common())


async def main():
    log = lambda *a: print(*a, flush=True)
    rss0, _, threads0 = rss()
    log(f"server RSS with no stream open: {mb(rss0):.1f} MB ({threads0} threads)")

    # Baseline: the same changes with no stream open (no feed, so no snapshot is read).
    base, _, _ = await measure([])
    log(f"baseline: {CHANGES} changes with no stream open: {sum(base.values())} server "
        f"queries ({breakdown(base) or 'none'})")

    cookies = []
    streams = []
    rows = []
    for target in STEPS:
        t0 = time.monotonic()
        while len(cookies) * PER_SESSION < target:
            cookies.append(await sign_in(USERS[len(cookies) % len(USERS)]))
        gate = asyncio.Semaphore(50)

        async def open_one(s, i):
            async with gate:
                await s.open(cookies[i // PER_SESSION])

        need = range(len(streams), target)
        new = [Stream() for _ in need]
        await asyncio.gather(*(open_one(s, i) for s, i in zip(new, need)))
        streams += new
        await asyncio.gather(*(asyncio.wait_for(s.first.wait(), 60) for s in streams))
        opened = time.monotonic() - t0
        r_open, _, threads = rss()
        counts, last, missing = await measure(streams)
        r_after, hwm, _ = rss()
        # What the baseline also ran (a timer's poll) is background, not the changes' cost.
        background = sum(n for q, n in counts.items() if q in base)
        per_change = (sum(counts.values()) - background) / CHANGES
        rows.append((target, len(cookies), mb(r_open), mb(r_after), per_change, last, missing))
        log(f"{target} streams over {len(cookies)} sessions: opened (and first snapshot at each) "
            f"in {opened:.1f} s; RSS {mb(r_open):.1f} MB open, {mb(r_after):.1f} MB after "
            f"{CHANGES} changes (peak {mb(hwm):.1f} MB, {threads} threads)")
        log(f"  {sum(counts.values())} server queries during {CHANGES} changes, {background} of "
            f"them background: {per_change:.2f} per change ({breakdown(counts)})")
        log(f"  the last change reached every stream within {last:.2f} s; "
            f"{missing} streams missed a change")

    for s in streams:
        s.close()
    await asyncio.sleep(1)
    r_closed, hwm, _ = rss()
    log(f"all streams closed: RSS {mb(r_closed):.1f} MB (peak {mb(hwm):.1f} MB)")
    log("")
    log("| streams | sessions | RSS open | RSS after the changes | queries per change |")
    log("|---|---|---|---|---|")
    log(f"| 0 | 0 | {mb(rss0):.1f} MB | — | — (no stream, no read) |")
    for target, sessions, r_open, r_after, per_change, _, _ in rows:
        log(f"| {target:,} | {sessions} | {r_open:.1f} MB | {r_after:.1f} MB | {per_change:.2f} |")
    if any(r[6] for r in rows):
        sys.exit("some streams missed changes")


asyncio.run(main())
