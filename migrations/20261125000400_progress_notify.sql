-- Live progress: every change the UI shows writes an event in the same transaction, so one
-- notification per event (delivered at commit, never for rolled-back work) tells the servers'
-- live-progress streams which environment to refresh. The payload is the environment id only.
CREATE FUNCTION events_notify_progress() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('berth_progress', NEW.environment_id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify_progress AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_notify_progress();
