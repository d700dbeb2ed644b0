-- The auditors' history (issue 7): exports of an environment's history are themselves audited.
-- Timeline pages and exports read `events` through `events_environment (environment_id, id)`;
-- the auditors' view reads the latest request, run and event of each environment through
-- `requests_environment`, `runs_environment` and the same events index. No new index is needed
-- for those (see docs/benchmarks.md for the plans at 10,000 environments / 1,000,000 events).

ALTER TABLE auth_events DROP CONSTRAINT auth_events_kind_check;
ALTER TABLE auth_events ADD CONSTRAINT auth_events_kind_check
    CHECK (kind IN ('sign_in', 'sign_out', 'sign_in_failed', 'access_denied', 'history_export'));
