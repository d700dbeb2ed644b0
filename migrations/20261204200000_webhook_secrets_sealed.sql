-- Webhook signing secrets sealed at rest (BERTH_SEALING_KEY; crates/db/src/sealing.rs):
-- AES-256-GCM with the endpoint's id as associated data. A row holds its secret either as it
-- is (no key configured) or sealed, never both; start-up moves rows to the configured form.
ALTER TABLE webhook_endpoints
    ALTER COLUMN secret DROP NOT NULL,
    ADD COLUMN secret_sealed bytea,
    ADD CONSTRAINT webhook_endpoints_one_secret
        CHECK ((secret IS NULL) <> (secret_sealed IS NULL));
