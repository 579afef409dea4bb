-- A revoked API token is logged in the change log too, so every replica ends the config streams
-- opened with it (docs/control-plane.md, "Security model").
ALTER TABLE config_changes DROP CONSTRAINT config_changes_resource_check;
ALTER TABLE config_changes ADD CONSTRAINT config_changes_resource_check
    CHECK (resource IN ('webhook', 'action', 'hmac_key', 'api_token'));
