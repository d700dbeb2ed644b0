-- An environment's whole life (issue 13): change and decommission requests, the environment's
-- own state machine (berth_domain::EnvironmentStatus::can_become holds the same table), the
-- releases deployed per app, and the steps that roll back and remove.

ALTER TABLE requests DROP CONSTRAINT requests_kind_check;
ALTER TABLE requests ADD CONSTRAINT requests_kind_check
    CHECK (kind IN ('create', 'change', 'decommission'));

-- The environment's current specification beside its name: the blueprint version deployed (set
-- when a run succeeds) and the per-app overrides in force. `status` is now the environment's own.
ALTER TABLE environments DROP CONSTRAINT environments_status_check;
ALTER TABLE environments ADD CONSTRAINT environments_status_check
    CHECK (status IN ('submitted', 'approved', 'rejected', 'withdrawn', 'provisioning', 'ready',
                      'failed', 'changing', 'decommissioning', 'decommissioned'));
ALTER TABLE environments
    ADD COLUMN blueprint_version text CHECK (blueprint_version ~ '^[0-9]+\.[0-9]+\.[0-9]+$'),
    ADD COLUMN overrides jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(overrides) = 'object'),
    ADD COLUMN decommissioned_at timestamptz,
    ADD CONSTRAINT environments_decommissioned_when CHECK (
        (status = 'decommissioned') = (decommissioned_at IS NOT NULL));

-- A decommissioned unit frees its name and slug (only after the proof: the run sets the status).
DROP INDEX environments_live_slug;
DROP INDEX environments_live_name;
CREATE UNIQUE INDEX environments_live_slug ON environments (company_id, lower(slug))
    WHERE status NOT IN ('rejected', 'withdrawn', 'decommissioned');
CREATE UNIQUE INDEX environments_live_name ON environments (company_id, lower(name))
    WHERE status NOT IN ('rejected', 'withdrawn', 'decommissioned');

CREATE FUNCTION environments_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.company_id <> OLD.company_id OR NEW.name <> OLD.name
       OR NEW.slug <> OLD.slug OR NEW.created_by <> OLD.created_by
       OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'an environment''s name, slug and origin never change'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status <> OLD.status AND NOT (
           (OLD.status = 'submitted' AND NEW.status IN ('approved', 'rejected', 'withdrawn'))
        OR (OLD.status = 'approved' AND NEW.status IN ('provisioning', 'submitted'))
        OR (OLD.status = 'provisioning' AND NEW.status IN ('ready', 'failed', 'submitted'))
        OR (OLD.status = 'failed' AND NEW.status IN ('provisioning', 'submitted', 'changing',
                                                     'decommissioning'))
        OR (OLD.status = 'ready' AND NEW.status IN ('changing', 'decommissioning'))
        OR (OLD.status = 'changing' AND NEW.status IN ('ready', 'failed'))
        OR (OLD.status = 'decommissioning' AND NEW.status IN ('decommissioned', 'failed', 'ready')))
    THEN
        RAISE EXCEPTION 'illegal environment transition % -> %', OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status = 'decommissioned' AND NEW IS DISTINCT FROM OLD THEN
        RAISE EXCEPTION 'a decommissioned environment never changes' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER environments_guard_update BEFORE UPDATE ON environments
    FOR EACH ROW EXECUTE FUNCTION environments_guard_update();

-- What each app of an environment runs now (owned by crates/runs, written with the step that
-- changed it): the chart version and Helm revision deployed. No values: they hold secrets.
CREATE TABLE environment_releases (
    environment_id  uuid NOT NULL REFERENCES environments (id),
    app             text NOT NULL CHECK (app ~ '^[a-z0-9-]+$'),
    release         text NOT NULL,
    chart_version   text NOT NULL,
    revision        integer NOT NULL CHECK (revision >= 1),
    run_id          uuid NOT NULL REFERENCES runs (id),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment_id, app)
);

-- Each app's revision when the run was approved: what a failed change rolls back to; and, while
-- a failed change rolls back, the failure it answers (the run's error says both at the end).
ALTER TABLE runs
    ADD COLUMN releases_before jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN rolling_back_from text CHECK (length(rolling_back_from) <= 2000);

ALTER TABLE steps DROP CONSTRAINT steps_kind_check;
ALTER TABLE steps ADD CONSTRAINT steps_kind_check
    CHECK (kind IN ('ensure_stack', 'read_secrets', 'ensure_namespace', 'deploy_chart', 'rollback',
                    'uninstall_chart', 'remove_namespace', 'delete_stack', 'prove_removed'));
ALTER TABLE steps DROP CONSTRAINT steps_chart_has_app;
ALTER TABLE steps ADD CONSTRAINT steps_chart_has_app
    CHECK ((kind IN ('deploy_chart', 'uninstall_chart')) = (app IS NOT NULL));
