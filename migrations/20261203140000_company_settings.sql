-- Company-wide settings that admins change on their pages (issue 14): for now the longest an
-- API token may live. A company without a row has the defaults (90 days, as
-- berth_domain::token::DEFAULT_MAX_TOKEN_DAYS); the ceiling (a year) repeats
-- berth_domain::token::TOKEN_DAYS_CEILING.
CREATE TABLE company_settings (
    company_id      uuid PRIMARY KEY REFERENCES companies (id),
    max_token_days  integer NOT NULL DEFAULT 90 CHECK (max_token_days BETWEEN 1 AND 365),
    updated_by      uuid NOT NULL REFERENCES users (id),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Service accounts are told apart by name on the admins' page.
CREATE UNIQUE INDEX users_service_account_name
    ON users (lower(display_name)) WHERE kind = 'service_account';

-- The sign-in audit trail also records who made or revoked a token, made, disabled or enabled
-- a service account, and changed a company setting (never a secret).
ALTER TABLE auth_events DROP CONSTRAINT auth_events_kind_check;
ALTER TABLE auth_events ADD CONSTRAINT auth_events_kind_check
    CHECK (kind IN ('sign_in', 'sign_out', 'sign_in_failed', 'access_denied', 'history_export',
                    'token_issued', 'token_revoked', 'service_account_created',
                    'service_account_disabled', 'service_account_enabled', 'setting_changed'));
