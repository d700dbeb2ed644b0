-- Issue 15: a tamper-evident history. Every event is hash-chained per company:
--
--   events.company_id  the company of the event's environment
--   events.chain_seq   1, 2, 3, ... per company, without gaps: the chain's order (not `id`:
--                      identity values are handed out before the chain is locked, so concurrent
--                      transactions can commit ids out of chain order)
--   events.prev_hash   the previous event's `hash` (the company's genesis hash for the first)
--   events.hash        sha256(prev_hash || events_canonical(event))
--
-- `audit_chain_heads` holds each company's genesis (recorded when its first event is written,
-- or by this migration) and its head: the last event's seq and hash, the value Berth publishes
-- so it can be kept elsewhere. An edited row no longer matches its hash, a deleted row leaves a
-- gap in chain_seq, a moved row no longer links to its predecessor: berth_db::audit_chain::verify
-- recomputes every hash with the same events_canonical and reports the first broken row.
--
-- The chain is computed by a BEFORE INSERT trigger, so every writer (berth_db::events::append,
-- tests and benchmarks inserting directly, psql) gets it; values a writer supplies for the four
-- columns are overwritten. Writers of a company take turns: the trigger locks the company's head
-- row until the transaction ends, so a transaction that writes an event should do so late and
-- commit soon after. It must stay the last BEFORE INSERT trigger on `events` (triggers fire in
-- name order): a later one changing the row would break the chain.

ALTER TABLE events
    ADD COLUMN company_id uuid,
    ADD COLUMN chain_seq  bigint,
    ADD COLUMN prev_hash  bytea,
    ADD COLUMN hash       bytea;

-- The canonical bytes of an event, one field a line, the nullable ones '-' when null (never a
-- UUID), `details` last (jsonb's text form is normalised: key order, spacing, duplicate keys).
-- Version-prefixed so that a later format can be told apart. IMMUTABLE in fact as well as by
-- declaration: the time is converted to UTC explicitly and formatted with numeric patterns only,
-- so neither TimeZone nor DateStyle nor the locale changes the result.
-- Outside PostgreSQL, the same bytes are:
--   "berth-event/1\n{company}\n{seq}\n{id}\n{environment}\n{request|-}\n{actor|-}\n{token|-}\n
--    {kind}\n{created_at as YYYY-MM-DDTHH:MM:SS.ffffffZ}\n{details as jsonb text}"  (UTF-8)
CREATE FUNCTION events_canonical(e events) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT convert_to(
        'berth-event/1'
        || E'\n' || coalesce(e.company_id::text, '-')
        || E'\n' || coalesce(e.chain_seq::text, '-')
        || E'\n' || coalesce(e.id::text, '-')
        || E'\n' || coalesce(e.environment_id::text, '-')
        || E'\n' || coalesce(e.request_id::text, '-')
        || E'\n' || coalesce(e.actor_id::text, '-')
        || E'\n' || coalesce(e.token_id::text, '-')
        || E'\n' || coalesce(e.kind, '-')
        || E'\n' || coalesce(to_char(e.created_at AT TIME ZONE 'UTC',
                                     'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '-')
        || E'\n' || coalesce(e.details::text, '-'),
        'UTF8')
$$;

-- A company's genesis: the hash its first event links to, recomputable from what is recorded.
CREATE FUNCTION audit_genesis_hash(company uuid, at timestamptz) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(
        'berth-audit-genesis/1' || E'\n' || company::text
        || E'\n' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'UTF8'))
$$;

CREATE TABLE audit_chain_heads (
    company_id    uuid PRIMARY KEY REFERENCES companies (id),
    genesis_at    timestamptz NOT NULL,
    genesis_hash  bytea NOT NULL CHECK (octet_length(genesis_hash) = 32),
    -- The last event's chain_seq and hash (0 and the genesis hash before the first event).
    seq           bigint NOT NULL CHECK (seq >= 0),
    head_hash     bytea NOT NULL CHECK (octet_length(head_hash) = 32)
);

-- Existing databases: chain what is there, per company in id order (the order it was written
-- in as far as anyone can tell), from a genesis recorded now.
INSERT INTO audit_chain_heads (company_id, genesis_at, genesis_hash, seq, head_hash)
SELECT id, now(), audit_genesis_hash(id, now()), 0, audit_genesis_hash(id, now())
FROM companies;

CREATE TEMPORARY TABLE events_chain_backfill (
    id         bigint NOT NULL,
    company_id uuid NOT NULL,
    chain_seq  bigint NOT NULL,
    prev_hash  bytea NOT NULL,
    hash       bytea NOT NULL
) ON COMMIT DROP;

DO $$
DECLARE
    rec     record;
    e       events;
    company uuid;
    seq     bigint;
    prev    bytea;
BEGIN
    FOR rec IN
        SELECT ev AS ev_row, env.company_id AS company
        FROM events ev JOIN environments env ON env.id = ev.environment_id
        ORDER BY env.company_id, ev.id
    LOOP
        e := rec.ev_row;
        IF company IS DISTINCT FROM rec.company THEN
            company := rec.company;
            seq := 0;
            SELECT genesis_hash INTO STRICT prev FROM audit_chain_heads WHERE company_id = company;
        END IF;
        seq := seq + 1;
        e.company_id := company;
        e.chain_seq := seq;
        e.prev_hash := prev;
        e.hash := sha256(prev || events_canonical(e));
        INSERT INTO events_chain_backfill VALUES (e.id, company, seq, prev, e.hash);
        prev := e.hash;
    END LOOP;
END;
$$;

ALTER TABLE events DISABLE TRIGGER events_no_update_delete;
UPDATE events e
SET company_id = b.company_id, chain_seq = b.chain_seq, prev_hash = b.prev_hash, hash = b.hash
FROM events_chain_backfill b
WHERE b.id = e.id;
ALTER TABLE events ENABLE TRIGGER events_no_update_delete;

UPDATE audit_chain_heads h
SET seq = b.chain_seq, head_hash = b.hash
FROM (SELECT DISTINCT ON (company_id) company_id, chain_seq, hash
      FROM events_chain_backfill ORDER BY company_id, chain_seq DESC) b
WHERE b.company_id = h.company_id;

ALTER TABLE events
    ALTER COLUMN company_id SET NOT NULL,
    ALTER COLUMN chain_seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL,
    ADD CONSTRAINT events_chain_shape
        CHECK (chain_seq >= 1 AND octet_length(prev_hash) = 32 AND octet_length(hash) = 32);

-- The chain's order, one position per event; also how the trigger finds a company's last event
-- and how verification walks the chain in batches.
CREATE UNIQUE INDEX events_chain ON events (company_id, chain_seq);

-- Seals each new event. SECURITY DEFINER (owned by the role that runs migrations) so that the
-- role the application runs as needs no write access to `audit_chain_heads`; its search_path is
-- pinned below, with pg_temp last, so a temporary table cannot stand in for ours.
CREATE FUNCTION events_chain_seal() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    genesis   bytea;
    last_seq  bigint;
    last_hash bytea;
BEGIN
    IF NEW.environment_id IS NULL THEN
        RETURN NEW; -- the NOT NULL constraint refuses it
    END IF;
    SELECT company_id INTO NEW.company_id FROM environments WHERE id = NEW.environment_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'insert or update on table "events" violates foreign key constraint "events_environment_id_fkey"'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'events_environment_id_fkey',
                  TABLE = 'events',
                  DETAIL = format('Key (environment_id)=(%s) is not present in table "environments".',
                                  NEW.environment_id);
    END IF;
    -- One writer per company at a time, until its transaction ends.
    SELECT genesis_hash INTO genesis
    FROM audit_chain_heads WHERE company_id = NEW.company_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO audit_chain_heads (company_id, genesis_at, genesis_hash, seq, head_hash)
        VALUES (NEW.company_id, now(), audit_genesis_hash(NEW.company_id, now()), 0,
                audit_genesis_hash(NEW.company_id, now()))
        ON CONFLICT (company_id) DO NOTHING;
        SELECT genesis_hash INTO STRICT genesis
        FROM audit_chain_heads WHERE company_id = NEW.company_id FOR UPDATE;
    END IF;
    -- The company's last event, committed or written earlier by this transaction (or by this
    -- statement: a row-level trigger sees the rows its statement inserted before). Read from
    -- the index rather than from the head row, which is updated once per statement: updating
    -- one row for every event of a large insert would make each lookup slower than the last.
    SELECT chain_seq, hash INTO last_seq, last_hash
    FROM events WHERE company_id = NEW.company_id ORDER BY chain_seq DESC LIMIT 1;
    IF NOT FOUND THEN
        last_seq := 0;
        last_hash := genesis;
    END IF;
    NEW.chain_seq := last_seq + 1;
    NEW.prev_hash := last_hash;
    NEW.hash := sha256(last_hash || events_canonical(NEW));
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_chain_seal BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_chain_seal();

-- Moves each company's head to the last event the statement wrote.
CREATE FUNCTION events_chain_head() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    UPDATE audit_chain_heads h
    SET seq = e.chain_seq, head_hash = e.hash
    FROM (SELECT company_id, max(chain_seq) AS chain_seq FROM sealed GROUP BY company_id) last
         JOIN events e ON e.company_id = last.company_id AND e.chain_seq = last.chain_seq
    WHERE h.company_id = last.company_id AND h.seq < last.chain_seq;
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_chain_head AFTER INSERT ON events
    REFERENCING NEW TABLE AS sealed
    FOR EACH STATEMENT EXECUTE FUNCTION events_chain_head();

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION events_chain_seal() SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION events_chain_head() SET search_path = %I, pg_temp',
                   current_schema());
END;
$$;

-- The role the application runs as (DATABASE_URL), when migrations run as another role that
-- owns the tables: everything it needs, and on the audit trails only INSERT and SELECT. A table's
-- owner can disable its triggers, so the runtime role must own nothing (checked here); it gets
-- no TRUNCATE, TRIGGER or REFERENCES anywhere, and reads only the chain heads and the migration
-- record. Idempotent: `server migrate` calls it after every migration run
-- (berth_db::grant_runtime_role), so tables added later are covered; a later append-only table
-- must be added to the REVOKE below (CREATE OR REPLACE in its migration).
CREATE FUNCTION berth_grant_runtime_role(runtime text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    target  oid := runtime::regrole;
    owner   oid := (SELECT relowner FROM pg_class WHERE oid = 'events'::regclass);
    ns      oid := (SELECT relnamespace FROM pg_class WHERE oid = 'events'::regclass);
    schema  text := quote_ident((SELECT nspname FROM pg_namespace WHERE oid = ns));
    grantee text := target::regrole::text;
    owned   text;
BEGIN
    IF pg_has_role(target, owner, 'USAGE') THEN
        RAISE EXCEPTION 'the runtime role % has the rights of %, the owner of the tables (an owner can disable the audit triggers)',
            runtime, owner::regrole USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE oid = target) THEN
        RAISE EXCEPTION 'the runtime role % is a superuser or may create roles (and so could make itself the owner)',
            runtime USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT string_agg(c.oid::regclass::text, ', ') INTO owned
    FROM pg_class c WHERE c.relnamespace = ns AND c.relowner = target;
    IF owned IS NOT NULL THEN
        RAISE EXCEPTION 'the runtime role % owns % (an owner can disable triggers)', runtime, owned
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    EXECUTE format('GRANT USAGE ON SCHEMA %s TO %s', schema, grantee);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO %s',
                   schema, grantee);
    EXECUTE format('REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA %s FROM %s',
                   schema, grantee);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %s TO %s', schema, grantee);
    -- The audit trails: insert and read only.
    EXECUTE format('REVOKE UPDATE, DELETE ON %s.events, %s.auth_events FROM %s',
                   schema, schema, grantee);
    -- Written by the chain triggers (as the owner) and by migrations only.
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %s.audit_chain_heads FROM %s', schema, grantee);
    IF to_regclass(schema || '._sqlx_migrations') IS NOT NULL THEN
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %s._sqlx_migrations FROM %s',
                       schema, grantee);
    END IF;
    -- The session store's table (tower-sessions), created by the server beside ours.
    IF to_regnamespace('tower_sessions') IS NOT NULL THEN
        EXECUTE format('GRANT USAGE ON SCHEMA tower_sessions TO %s', grantee);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tower_sessions TO %s',
                       grantee);
    END IF;
END;
$$;
