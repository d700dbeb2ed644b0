-- Email notifications (issue 14): written by berth_db::events::append in the event's
-- transaction, one row per recipient, sent by the mail worker (crates/notify) when SMTP is
-- configured. Without SMTP nothing sends them; a worker started later skips the ones older
-- than a day instead of mailing a backlog.
CREATE TABLE mail_outbox (
    id               bigserial PRIMARY KEY,
    event_id         bigint NOT NULL REFERENCES events (id),
    kind             text NOT NULL
                     CHECK (kind IN ('approval_needed', 'approved', 'rejected', 'ready', 'failed')),
    recipient        text NOT NULL,
    -- What the message says: the environment, the request, a reason or error.
    data             jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    UNIQUE (event_id, recipient)
);

CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'pending';
