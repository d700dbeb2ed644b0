-- Sign-in audit: sign-ins, sign-outs, failed sign-ins and refused actions. Append-only like
-- `events` (same trigger function).
CREATE TABLE auth_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('sign_in', 'sign_out', 'sign_in_failed', 'access_denied')),
    user_id      uuid REFERENCES users (id),
    subject      text,
    source_addr  text,
    reason       text CHECK (length(reason) <= 500),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX auth_events_time ON auth_events (created_at DESC);
CREATE INDEX auth_events_user ON auth_events (user_id, created_at DESC);

CREATE TRIGGER auth_events_no_update_delete BEFORE UPDATE OR DELETE ON auth_events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER auth_events_no_truncate BEFORE TRUNCATE ON auth_events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
