-- Tell every control-plane replica when config changes commit. NOTIFY is delivered at commit, and only
-- if the transaction commits; the payload is empty because listeners read the change log themselves
-- (a catch-up read after their last version), so a lost notification never loses a change.
CREATE FUNCTION gateway_notify_config_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gateway_config', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER config_changes_notify
    AFTER INSERT ON config_changes
    FOR EACH STATEMENT EXECUTE FUNCTION gateway_notify_config_change();

-- Record when each change was written rather than when its transaction began, for convergence figures.
ALTER TABLE config_changes ALTER COLUMN committed_at SET DEFAULT clock_timestamp();
