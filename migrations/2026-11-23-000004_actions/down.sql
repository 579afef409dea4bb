DROP TABLE hmac_keys;
DROP TABLE actions;
DELETE FROM config_changes WHERE resource <> 'webhook';
ALTER INDEX config_changes_resource RENAME TO config_changes_webhook;
ALTER TABLE config_changes DROP COLUMN resource;
ALTER TABLE config_changes RENAME COLUMN resource_id TO webhook_id;
