-- Berth's foundation schema: companies, users, environments, requests and the append-only
-- event log. The request state machine mirrors berth_domain::RequestStatus::can_become.

CREATE TABLE companies (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z]([-a-z0-9]{0,38}[a-z0-9])$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    issuer         text NOT NULL,
    subject        text NOT NULL,
    display_name   text NOT NULL,
    email          text,
    roles          text[] NOT NULL DEFAULT '{}'
                   CHECK (roles <@ ARRAY['manager', 'admin', 'auditor']::text[]),
    first_sign_in  timestamptz,
    last_sign_in   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (issuer, subject)
);

CREATE TABLE environments (
    id             uuid PRIMARY KEY,
    company_id     uuid NOT NULL REFERENCES companies (id),
    name           text NOT NULL CHECK (length(name) BETWEEN 2 AND 64),
    slug           text NOT NULL CHECK (slug ~ '^[a-z]([-a-z0-9]{0,38}[a-z0-9])$'),
    description    text NOT NULL DEFAULT '',
    owner_contact  text NOT NULL,
    blueprint      text NOT NULL CHECK (blueprint IN ('insight')),
    size           text NOT NULL CHECK (size IN ('small', 'medium', 'large')),
    -- The status of the environment's latest request, kept in the same transaction.
    status         text NOT NULL CHECK (status IN ('submitted', 'approved', 'rejected', 'withdrawn',
                                                   'provisioning', 'ready', 'failed')),
    created_by     uuid NOT NULL REFERENCES users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Names and slugs are unique per company, case-insensitively, among environments that still
-- live: a rejected or withdrawn request frees its name for a corrected one.
CREATE UNIQUE INDEX environments_live_slug
    ON environments (company_id, lower(slug)) WHERE status NOT IN ('rejected', 'withdrawn');
CREATE UNIQUE INDEX environments_live_name
    ON environments (company_id, lower(name)) WHERE status NOT IN ('rejected', 'withdrawn');
CREATE INDEX environments_company_updated ON environments (company_id, updated_at DESC);

CREATE TABLE requests (
    id              uuid PRIMARY KEY,
    environment_id  uuid NOT NULL REFERENCES environments (id),
    kind            text NOT NULL CHECK (kind IN ('create', 'change')),
    spec            jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'submitted'
                    CHECK (status IN ('submitted', 'approved', 'rejected', 'withdrawn',
                                      'provisioning', 'ready', 'failed')),
    requested_by    uuid NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    decided_by      uuid REFERENCES users (id),
    decided_at      timestamptz,
    decision_note   text CHECK (length(decision_note) <= 1000),
    -- Separation of duties, enforced here as well as in the policy module.
    CONSTRAINT requests_not_self_decided CHECK (decided_by IS NULL OR decided_by <> requested_by),
    CONSTRAINT requests_rejection_has_reason CHECK (status <> 'rejected' OR decision_note IS NOT NULL),
    CONSTRAINT requests_decision_recorded CHECK (
        status IN ('submitted', 'withdrawn') OR (decided_by IS NOT NULL AND decided_at IS NOT NULL))
);

-- At most one request awaiting a decision per environment.
CREATE UNIQUE INDEX requests_one_open ON requests (environment_id) WHERE status = 'submitted';
CREATE INDEX requests_environment ON requests (environment_id, created_at DESC);

CREATE FUNCTION requests_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.environment_id <> OLD.environment_id OR NEW.kind <> OLD.kind
       OR NEW.spec <> OLD.spec OR NEW.requested_by <> OLD.requested_by
       OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'a request''s content cannot change once submitted'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status <> OLD.status AND NOT (
           (OLD.status = 'submitted' AND NEW.status IN ('approved', 'rejected', 'withdrawn'))
        OR (OLD.status = 'approved' AND NEW.status = 'provisioning')
        OR (OLD.status = 'provisioning' AND NEW.status IN ('ready', 'failed'))
        OR (OLD.status = 'failed' AND NEW.status = 'provisioning')) THEN
        RAISE EXCEPTION 'illegal request transition % -> %', OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.decided_by IS NOT NULL AND NEW.decided_by IS DISTINCT FROM OLD.decided_by THEN
        RAISE EXCEPTION 'a decision cannot be changed' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER requests_guard_update BEFORE UPDATE ON requests
    FOR EACH ROW EXECUTE FUNCTION requests_guard_update();

CREATE FUNCTION requests_guard_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'requests are never deleted' USING ERRCODE = 'check_violation';
END;
$$;

CREATE TRIGGER requests_guard_delete BEFORE DELETE ON requests
    FOR EACH ROW EXECUTE FUNCTION requests_guard_delete();

-- The audit trail: append-only, enforced by triggers (no update, delete or truncate).
CREATE TABLE events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    environment_id  uuid NOT NULL REFERENCES environments (id),
    request_id      uuid REFERENCES requests (id),
    actor_id        uuid REFERENCES users (id),
    kind            text NOT NULL CHECK (kind ~ '^[a-z][a-z_.]*$'),
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_environment ON events (environment_id, id);

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only (% refused)', TG_OP USING ERRCODE = 'check_violation';
END;
$$;

CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
