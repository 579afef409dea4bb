DELETE FROM config_changes WHERE resource = 'api_token';
ALTER TABLE config_changes DROP CONSTRAINT config_changes_resource_check;
ALTER TABLE config_changes ADD CONSTRAINT config_changes_resource_check
    CHECK (resource IN ('webhook', 'action', 'hmac_key'));
