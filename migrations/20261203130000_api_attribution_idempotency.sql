-- Issue 14: which token did it, and POSTs that may be repeated safely.
--
-- An event written in a transaction that acts for an API token names the token. The caller's
-- transaction says so with `SELECT set_config('berth.token_id', <id>, true)` (berth_db::begin_as),
-- so every event of that transaction, the engine's included, is attributed without each insert
-- passing it along.
ALTER TABLE events
    ADD COLUMN token_id uuid REFERENCES api_tokens (id)
        DEFAULT NULLIF(current_setting('berth.token_id', true), '')::uuid;

-- The first answer to a POST carrying an `Idempotency-Key`, per token, kept a day: the same key
-- with the same body gets that answer again; with another body, 422.
CREATE TABLE api_idempotency (
    token_id      uuid NOT NULL REFERENCES api_tokens (id),
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of method, path and body: what "the same request" means.
    request_sha256 bytea NOT NULL CHECK (length(request_sha256) = 32),
    status        smallint NOT NULL,
    response      jsonb NOT NULL,
    location      text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, key)
);

CREATE INDEX api_idempotency_age ON api_idempotency (created_at);
