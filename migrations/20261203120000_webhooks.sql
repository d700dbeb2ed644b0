-- Signed webhooks (issue 14): endpoints admins register, and a durable outbox written by
-- berth_db::events::append in the transaction of the event itself, so a delivery exists exactly
-- when its event committed. The delivery worker (crates/notify) claims due deliveries with a
-- lease, records every attempt, and retries with backoff until the endpoint answers 2xx or the
-- attempts run out (then the endpoint is disabled with the reason).

CREATE TABLE webhook_endpoints (
    id               uuid PRIMARY KEY,
    url              text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
    description      text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
    event_types      text[] NOT NULL
                     CHECK (cardinality(event_types) > 0
                            AND event_types <@ ARRAY['request.submitted', 'request.decided',
                                'run.started', 'environment.ready', 'run.failed',
                                'environment.changed', 'environment.decommissioned']::text[]),
    -- The signing key (the bytes behind "whsec_<base64>"): needed to sign, so kept as is;
    -- shown once when the endpoint is made, never again.
    secret           bytea NOT NULL CHECK (length(secret) BETWEEN 24 AND 64),
    enabled          boolean NOT NULL DEFAULT true,
    disabled_at      timestamptz,
    -- Why it is off: who turned it off, or the delivery that used up its attempts.
    disabled_reason  text,
    created_by       uuid NOT NULL REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (enabled = (disabled_at IS NULL)),
    CHECK (enabled OR disabled_reason IS NOT NULL)
);

-- One message per event that some endpoint wanted: its public type and data, as the event
-- committed. `webhook-id` is "evt_<event_id>", the same for every endpoint and every attempt.
CREATE TABLE webhook_messages (
    event_id    bigint PRIMARY KEY REFERENCES events (id),
    event_type  text NOT NULL,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         bigint NOT NULL REFERENCES webhook_messages (event_id),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed')),
    -- Every attempt ever (also the fence: a worker records its outcome only if no later
    -- attempt was claimed meanwhile).
    attempts         integer NOT NULL DEFAULT 0,
    -- Failed attempts since the delivery was last queued (a redelivery starts again at 0).
    failures         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    last_status      integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    -- One delivery per endpoint and event: an event is never queued twice for an endpoint.
    UNIQUE (endpoint_id, event_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, created_at DESC);

CREATE TABLE webhook_attempts (
    id               bigserial PRIMARY KEY,
    delivery_id      uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt          integer NOT NULL,
    started_at       timestamptz NOT NULL,
    duration_ms      integer NOT NULL,
    status_code      integer,
    error            text,
    -- When the next attempt is due after this one, if there is one.
    next_attempt_at  timestamptz,
    UNIQUE (delivery_id, attempt)
);
