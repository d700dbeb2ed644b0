-- One row per sign-in (a browser session), so that rights follow the identity provider and
-- admins can end a person's sessions. The session cookie's record (tower_sessions) holds only
-- this row's id; whether the sign-in still stands is read here on every call.
CREATE TABLE sign_ins (
    id                 uuid PRIMARY KEY,
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- 'sso' (single sign-on: re-checked at the provider) or 'development' (demo accounts).
    method             text NOT NULL CHECK (method IN ('sso', 'development')),
    signed_in_at       timestamptz NOT NULL DEFAULT now(),
    -- The absolute lifetime: past it the sign-in ends whatever the activity.
    expires_at         timestamptz NOT NULL,
    source_addr        text,
    -- Set once the sign-in ends (signed out, ended by an admin, refused by the provider,
    -- expired); an ended sign-in never comes back.
    ended_at           timestamptz,
    ended_reason       text,
    ended_by           uuid REFERENCES users (id) ON DELETE SET NULL,
    -- Single sign-on only: what the provider gave, to ask again about the person's groups
    -- (cleared when the sign-in ends). A refresh token is useless without the client secret.
    access_token       text,
    refresh_token      text,
    access_expires_at  timestamptz,
    -- When the provider last confirmed the person's groups, and when a re-check was last
    -- claimed (one caller at a time asks the provider).
    roles_checked_at   timestamptz NOT NULL DEFAULT now(),
    recheck_claimed_at timestamptz,
    CHECK ((ended_at IS NULL) = (ended_reason IS NULL)),
    CHECK (ended_at IS NULL OR (access_token IS NULL AND refresh_token IS NULL))
);
CREATE INDEX sign_ins_open_by_user ON sign_ins (user_id) WHERE ended_at IS NULL;
CREATE INDEX sign_ins_ended ON sign_ins (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX sign_ins_expires ON sign_ins (expires_at) WHERE ended_at IS NULL;

-- The sign-in audit trail also records sessions ended by an admin or by the identity
-- provider, and roles changed at the provider during a session.
ALTER TABLE auth_events DROP CONSTRAINT auth_events_kind_check;
ALTER TABLE auth_events ADD CONSTRAINT auth_events_kind_check
    CHECK (kind IN ('sign_in', 'sign_out', 'sign_in_failed', 'access_denied', 'history_export',
                    'token_issued', 'token_revoked', 'service_account_created',
                    'service_account_disabled', 'service_account_enabled', 'setting_changed',
                    'sessions_ended', 'session_ended', 'roles_changed'));
