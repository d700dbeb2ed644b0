-- A decommissioned unit's secrets keep their names through their recovery window, and
-- Secrets Manager refuses a new secret under a scheduled one's name. A later environment with
-- the same company and slug therefore names its secrets apart, under its incarnation: the first
-- 8 hex digits of its id, or NULL for the first environment of a slug (docs/aws.md). Stable for
-- an environment's life: decommissioned rows never change and are never deleted, and an
-- environment's slug is taken only when no other live environment holds it.
CREATE FUNCTION environment_incarnation(environment uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN EXISTS (
               SELECT 1 FROM environments earlier
               WHERE earlier.company_id = e.company_id AND earlier.slug = e.slug
                 AND earlier.id <> e.id AND earlier.status = 'decommissioned'
                 AND earlier.created_at < e.created_at)
           THEN left(e.id::text, 8) END
    FROM environments e WHERE e.id = environment
$$;
