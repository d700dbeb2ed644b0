-- The provisioning engine (crates/engine): durable runs and their steps, a DAG per run, claimed by
-- workers with FOR UPDATE SKIP LOCKED under a lease renewed by heartbeat. Secrets are never
-- stored here: step outputs hold ids and ARNs only, logs are redacted before they are written.

CREATE TABLE runs (
    id                 uuid PRIMARY KEY,
    environment_id     uuid NOT NULL REFERENCES environments (id),
    request_id         uuid NOT NULL REFERENCES requests (id),
    blueprint          text NOT NULL,
    blueprint_version  text NOT NULL,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    created_by         uuid REFERENCES users (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    finished_at        timestamptz,
    -- Short, redacted: why the run failed or was cancelled.
    error              text CHECK (length(error) <= 2000),
    CONSTRAINT runs_finished_when_final CHECK (
        (status IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);

-- At most one live run per environment: a second approval cannot race the first.
CREATE UNIQUE INDEX runs_one_live_per_environment
    ON runs (environment_id) WHERE status IN ('pending', 'running');
-- The environment page and the auditors' views: runs of an environment, newest first.
CREATE INDEX runs_environment ON runs (environment_id, created_at DESC);
CREATE INDEX runs_request ON runs (request_id);

CREATE TABLE steps (
    id                uuid PRIMARY KEY,
    run_id            uuid NOT NULL REFERENCES runs (id),
    -- Unique within the run: `ensure_stack`, `read_secrets`, `ensure_namespace`, `chart:<app>`.
    name              text NOT NULL CHECK (name ~ '^[a-z_]+(:[a-z0-9-]+)?$'),
    kind              text NOT NULL
                      CHECK (kind IN ('ensure_stack', 'read_secrets', 'ensure_namespace', 'deploy_chart')),
    -- The blueprint app for `deploy_chart`.
    app               text,
    -- Display order (a topological order of the DAG).
    position          integer NOT NULL,
    -- Names of the steps of the same run this one waits for.
    depends_on        text[] NOT NULL DEFAULT '{}',
    status            text NOT NULL
                      CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'blocked',
                                        'skipped', 'cancelled')),
    -- Attempts over the step's life; the idempotency key of an attempt is `<id>:<attempts>`.
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- `attempts` when an operator last retried the run: the budget counts from there.
    attempts_base     integer NOT NULL DEFAULT 0 CHECK (attempts_base BETWEEN 0 AND attempts),
    max_attempts      integer NOT NULL CHECK (max_attempts >= 1),
    -- Not claimable before this (retry backoff).
    run_after         timestamptz NOT NULL DEFAULT now(),
    lease_owner       uuid,
    lease_expires_at  timestamptz,
    started_at        timestamptz,
    finished_at       timestamptz,
    -- Why a blocked step waits ("waiting for certs to be ready").
    blocked_reason    text,
    -- Short redacted log of the step's attempts (the newest lines are kept).
    log               text NOT NULL DEFAULT '' CHECK (length(log) <= 8000),
    error             text CHECK (length(error) <= 2000),
    -- Non-secret results later steps need (stack id, secret ARNs, cluster id, namespace).
    output            jsonb,
    CONSTRAINT steps_unique_name UNIQUE (run_id, name),
    CONSTRAINT steps_chart_has_app CHECK ((kind = 'deploy_chart') = (app IS NOT NULL)),
    CONSTRAINT steps_lease_while_running CHECK (
        (status = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);

CREATE INDEX steps_run ON steps (run_id, position);
-- The claim query: ready steps by due time, and running steps by lease expiry.
CREATE INDEX steps_ready ON steps (run_after) WHERE status = 'pending';
CREATE INDEX steps_leased ON steps (lease_expires_at) WHERE status = 'running';

-- One row per attempt: its idempotency key, written when the step is claimed and checked by the
-- worker before it calls out; a late worker whose lease was taken over finds it superseded.
CREATE TABLE step_attempts (
    step_id          uuid NOT NULL REFERENCES steps (id),
    attempt          integer NOT NULL CHECK (attempt >= 1),
    idempotency_key  text NOT NULL UNIQUE,
    worker_id        uuid NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    outcome          text NOT NULL DEFAULT 'running'
                     CHECK (outcome IN ('running', 'succeeded', 'retrying', 'failed', 'lease_lost',
                                        'cancelled')),
    error            text CHECK (length(error) <= 2000),
    PRIMARY KEY (step_id, attempt)
);
