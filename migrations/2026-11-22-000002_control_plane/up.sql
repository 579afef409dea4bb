-- The control plane's registrations. Tenancy is organization -> workspace -> app; every object carries
-- all three ids and every uniqueness rule includes them, so tenants never collide or see each other.
-- Ciphertext columns hold AES-256-GCM values sealed by gateway_shared::crypto (key id inside the value,
-- associated data = table, row and column); the master keys never live in the database.

-- API tokens: only the SHA-256 of the token text is stored.
CREATE TABLE api_tokens (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL,
    workspace_id UUID,
    role TEXT NOT NULL CHECK (role IN ('ADMIN', 'EDITOR', 'VIEWER', 'DATA_PLANE')),
    name TEXT NOT NULL,
    token_sha256 BYTEA NOT NULL CONSTRAINT api_tokens_token_sha256_key UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
CREATE INDEX api_tokens_org ON api_tokens (organization_id, id);

CREATE TABLE webhooks (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL,
    workspace_id UUID NOT NULL,
    app_id UUID NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    provider TEXT NOT NULL CHECK (provider IN
        ('GENERIC', 'SLACK', 'META', 'GITHUB', 'STRIPE', 'STANDARD_WEBHOOKS', 'SHOPIFY')),
    state TEXT NOT NULL DEFAULT 'DEACTIVATED' CHECK (state IN ('ACTIVE', 'DEACTIVATED')),
    correlation_key_path TEXT,
    include_raw_body BOOLEAN NOT NULL DEFAULT FALSE,
    -- The API key, sealed (GetWebhookUrl shows it), and its SHA-256 (what data planes receive).
    api_key_ciphertext BYTEA NOT NULL,
    api_key_sha256 BYTEA NOT NULL,
    -- After a reset with a grace window, the previous key stays valid until not_after.
    previous_api_key_sha256 BYTEA,
    previous_api_key_not_after TIMESTAMPTZ,
    -- The provider secret as entered (may hold ${configParam.name} placeholders) and resolved, both
    -- sealed JSON {"signingSecret":…,"verifyToken":…}; the names of the params it references in clear.
    secret_template_ciphertext BYTEA,
    secret_resolved_ciphertext BYTEA,
    secret_param_refs TEXT[] NOT NULL DEFAULT '{}',
    -- After a rotation with a grace window, the previous resolved secret stays valid until not_after.
    previous_secret_resolved_ciphertext BYTEA,
    previous_secret_not_after TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT webhooks_app_name_key UNIQUE (organization_id, workspace_id, app_id, name)
);
CREATE INDEX webhooks_active ON webhooks (state) WHERE state = 'ACTIVE';
CREATE INDEX webhooks_param_refs ON webhooks USING GIN (secret_param_refs);

CREATE TABLE config_params (
    organization_id UUID NOT NULL,
    workspace_id UUID NOT NULL,
    app_id UUID NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('VALUE', 'SECRET')),
    -- VALUE params in clear, SECRET params sealed; exactly one is set.
    value_text TEXT,
    value_ciphertext BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, workspace_id, app_id, name),
    CHECK ((kind = 'VALUE') = (value_text IS NOT NULL) AND (kind = 'SECRET') = (value_ciphertext IS NOT NULL))
);

-- A webhook bound to a node of a committed process version. Committing a process version replaces
-- all bindings of that process definition in its app.
CREATE TABLE trigger_bindings (
    id BIGSERIAL PRIMARY KEY,
    webhook_id UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    organization_id UUID NOT NULL,
    workspace_id UUID NOT NULL,
    app_id UUID NOT NULL,
    process_definition_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    node_kind TEXT NOT NULL CHECK (node_kind IN ('MESSAGE_START_EVENT', 'MESSAGE_CATCH_INTERMEDIATE_EVENT')),
    trigger_type TEXT NOT NULL CHECK (trigger_type IN ('START_PROCESS', 'RESUME_PROCESS')),
    process_correlation_key TEXT,
    process_key TEXT,
    project_id TEXT NOT NULL,
    branch TEXT NOT NULL,
    process_version TEXT NOT NULL DEFAULT '',
    committed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT trigger_bindings_node_key
        UNIQUE (organization_id, workspace_id, app_id, process_definition_id, node_id, webhook_id),
    CHECK (trigger_type = 'START_PROCESS'
           OR (process_correlation_key IS NOT NULL AND process_key IS NOT NULL))
);
CREATE INDEX trigger_bindings_webhook ON trigger_bindings (webhook_id);
CREATE INDEX trigger_bindings_process ON trigger_bindings
    (organization_id, workspace_id, app_id, process_definition_id);

-- config_changes.webhook_id has no foreign key on purpose: rows of deleted webhooks must stay.
CREATE INDEX config_changes_webhook ON config_changes (webhook_id, revision);
