-- Plans (owned by crates/runs): what an approval will build, computed by a worker, immutable once
-- computed and bound to the approval by its SHA-256. A request's current plan is its newest.

CREATE TABLE plans (
    id                uuid PRIMARY KEY,
    request_id        uuid NOT NULL REFERENCES requests (id),
    environment_id    uuid NOT NULL REFERENCES environments (id),
    -- Why it was computed: the request was submitted, an admin refreshed it, or the worker found
    -- the approved plan out of date.
    reason            text NOT NULL CHECK (reason IN ('submitted', 'refresh', 'stale')),
    requested_by      uuid REFERENCES users (id),
    status            text NOT NULL DEFAULT 'computing'
                      CHECK (status IN ('computing', 'ready', 'failed')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- Claims by workers, as for steps: a crashed worker's plan is taken over after the lease.
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_owner       uuid,
    lease_expires_at  timestamptz,
    run_after         timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    -- The content hash over the canonical document (less its capacity figures).
    hash              text CHECK (hash ~ '^[0-9a-f]{64}$'),
    -- berth_domain::plan::PlanDocument; never a secret value.
    document          jsonb,
    error             text CHECK (length(error) <= 4000),
    CONSTRAINT plans_ready_has_content CHECK (
        (status = 'ready') = (hash IS NOT NULL AND document IS NOT NULL)),
    CONSTRAINT plans_failed_has_reason CHECK ((status = 'failed') = (error IS NOT NULL)),
    CONSTRAINT plans_finished_when_final CHECK ((status <> 'computing') = (finished_at IS NOT NULL))
);

CREATE INDEX plans_request ON plans (request_id, created_at DESC);
CREATE INDEX plans_computing ON plans (run_after) WHERE status = 'computing';

CREATE FUNCTION plans_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'plans are never deleted' USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status <> 'computing' THEN
        RAISE EXCEPTION 'a computed plan is immutable' USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.request_id <> OLD.request_id OR NEW.environment_id <> OLD.environment_id
       OR NEW.created_at <> OLD.created_at OR NEW.reason <> OLD.reason THEN
        RAISE EXCEPTION 'a plan''s origin cannot change' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER plans_guard BEFORE UPDATE OR DELETE ON plans
    FOR EACH ROW EXECUTE FUNCTION plans_guard();

-- The plan an approval bound, and the approver's reason when it exceeded the cluster's capacity.
ALTER TABLE requests
    ADD COLUMN approved_plan_id uuid REFERENCES plans (id),
    ADD COLUMN capacity_override text CHECK (length(capacity_override) <= 1000);

-- The plan each run executes.
ALTER TABLE runs ADD COLUMN plan_id uuid REFERENCES plans (id);

-- A request whose approved plan went out of date goes back to awaiting a decision: its decision
-- is cleared (the events keep it), nothing else may change.
CREATE OR REPLACE FUNCTION requests_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.environment_id <> OLD.environment_id OR NEW.kind <> OLD.kind
       OR NEW.spec <> OLD.spec OR NEW.requested_by <> OLD.requested_by
       OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'a request''s content cannot change once submitted'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status <> OLD.status AND NOT (
           (OLD.status = 'submitted' AND NEW.status IN ('approved', 'rejected', 'withdrawn'))
        OR (OLD.status = 'approved' AND NEW.status IN ('provisioning', 'submitted'))
        OR (OLD.status = 'provisioning' AND NEW.status IN ('ready', 'failed', 'submitted'))
        OR (OLD.status = 'failed' AND NEW.status IN ('provisioning', 'submitted'))) THEN
        RAISE EXCEPTION 'illegal request transition % -> %', OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.decided_by IS NOT NULL AND NEW.decided_by IS DISTINCT FROM OLD.decided_by
       AND NOT (NEW.status = 'submitted' AND NEW.decided_by IS NULL) THEN
        RAISE EXCEPTION 'a decision cannot be changed' USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status = 'submitted' AND OLD.status <> 'submitted'
       AND (NEW.decided_by IS NOT NULL OR NEW.approved_plan_id IS NOT NULL) THEN
        RAISE EXCEPTION 'a request awaiting a decision again carries no decision'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
