-- Machine credentials (issue 14): personal access tokens and service accounts.
--
-- A service account is a user that never signs in (issuer 'berth:service-account'); an admin
-- makes it and gives it roles like a person's. A token belongs to one user, carries scopes no
-- wider than that user's roles when it was made (the policy re-checks the roles on every call),
-- and is stored only as the SHA-256 of its secret (256 random bits: a fast hash is enough).
ALTER TABLE users
    ADD COLUMN kind text NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'service_account')),
    ADD COLUMN created_by uuid REFERENCES users (id),
    ADD COLUMN disabled_at timestamptz,
    ADD CONSTRAINT users_service_account_maker
        CHECK (kind = 'person' OR created_by IS NOT NULL);

CREATE TABLE api_tokens (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users (id),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    secret_sha256   bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    -- The prefix and first hex digits, so people can tell their tokens apart in a list.
    shown_prefix    text NOT NULL,
    scopes          text[] NOT NULL
                    CHECK (cardinality(scopes) > 0
                           AND scopes <@ ARRAY['read', 'request', 'decide', 'operate']::text[]),
    created_by      uuid NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL CHECK (expires_at > created_at),
    revoked_at      timestamptz,
    revoked_by      uuid REFERENCES users (id),
    last_used_at    timestamptz,
    last_used_addr  text,
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);

CREATE INDEX api_tokens_user ON api_tokens (user_id, created_at DESC);
