-- Outbound actions (docs/actions.md): the action servers an app registered, and the HMAC keys that
-- sign the calls to them. Tenancy as for webhooks: every row carries organization, workspace and app.

-- The change log now names any distributed object, not only webhooks: `resource` says which table
-- `resource_id` points into. Existing rows are webhooks.
ALTER TABLE config_changes RENAME COLUMN webhook_id TO resource_id;
ALTER TABLE config_changes ADD COLUMN resource TEXT NOT NULL DEFAULT 'webhook'
    CHECK (resource IN ('webhook', 'action', 'hmac_key'));
ALTER INDEX config_changes_webhook RENAME TO config_changes_resource;

-- An action server. Saved only after its URL answered the signed test request (validated_at).
CREATE TABLE actions (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL,
    workspace_id UUID NOT NULL,
    app_id UUID NOT NULL,
    name TEXT NOT NULL CHECK (name ~ '^[a-z0-9_]{1,100}$'),
    description TEXT NOT NULL CHECK (char_length(description) BETWEEN 1 AND 500),
    webhook_url TEXT NOT NULL CHECK (char_length(webhook_url) BETWEEN 1 AND 2048),
    -- A JSON Schema (checked against its draft's meta-schema before it is stored).
    json_schema JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(json_schema) = 'object'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    validated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT actions_app_name_key UNIQUE (organization_id, workspace_id, app_id, name)
);

-- HMAC keys of an app. The value is sealed like provider secrets (AES-256-GCM, key id inside the
-- value, associated data = hmac_keys / row id / value_ciphertext): signing needs it in clear, so a
-- hash would not do. Revoked keys stay listed and are never used again.
CREATE TABLE hmac_keys (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL,
    workspace_id UUID NOT NULL,
    app_id UUID NOT NULL,
    label TEXT NOT NULL DEFAULT '' CHECK (char_length(label) <= 100),
    value_ciphertext BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
-- ListHmacKeys (newest first) and "the newest active key of the app".
CREATE INDEX hmac_keys_app_created ON hmac_keys
    (organization_id, workspace_id, app_id, created_at DESC, id DESC);
