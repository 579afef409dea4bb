DROP INDEX config_changes_webhook;
DROP TABLE trigger_bindings;
DROP TABLE config_params;
DROP TABLE webhooks;
DROP TABLE api_tokens;
