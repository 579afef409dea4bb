ALTER TABLE config_changes ALTER COLUMN committed_at SET DEFAULT now();
DROP TRIGGER config_changes_notify ON config_changes;
DROP FUNCTION gateway_notify_config_change();
