-- Rate limits shared by every server process (crates/db/src/rate_limits.rs): one GCRA bucket
-- per key, holding its theoretical arrival time. Unlogged: a crash forgets the buckets (every
-- key starts with its full allowance), which a rate limit can afford, and no write-ahead log is
-- spent on a write per API call.
CREATE UNLOGGED TABLE rate_limits (
    bucket text PRIMARY KEY CHECK (length(bucket) BETWEEN 1 AND 200),
    tat    timestamptz NOT NULL
);
