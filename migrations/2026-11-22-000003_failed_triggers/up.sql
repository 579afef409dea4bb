-- Failed triggers: requests that reached a known webhook and were not published, reported by data
-- planes. The id is the report id the data plane chose, so a retried batch inserts nothing twice
-- (ON CONFLICT (id) DO NOTHING). Headers are stored masked (credentials, signatures, API keys); the
-- payload is customer data kept in clear (not one of the gateway's secrets), truncated to the
-- configured size. Rows expire by age and by count per webhook (see docs/control-plane.md).
CREATE TABLE failed_triggers (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL,
    workspace_id UUID NOT NULL,
    app_id UUID NOT NULL,
    webhook_id UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    -- When the data plane received the request, and when this replica stored the report.
    received_at TIMESTAMPTZ NOT NULL,
    reported_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    reason_code TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    http_status INTEGER NOT NULL,
    request_id TEXT NOT NULL DEFAULT '',
    data_plane_id TEXT NOT NULL DEFAULT '',
    method TEXT NOT NULL DEFAULT '',
    -- [{"name": "Content-Type", "values": ["application/json"]}, …], masked.
    headers JSONB NOT NULL DEFAULT '[]',
    payload BYTEA NOT NULL DEFAULT '',
    payload_size BIGINT NOT NULL DEFAULT 0,
    payload_truncated BOOLEAN NOT NULL,
    -- The whole body was kept, so ReplayFailedTrigger can publish it.
    replayable BOOLEAN NOT NULL,
    replayed_at TIMESTAMPTZ,
    replay_event_id UUID,
    replay_count INTEGER NOT NULL DEFAULT 0
);
-- ListFailedTriggers: an app's rows newest first, keyset-paged on (received_at, id).
CREATE INDEX failed_triggers_app_received ON failed_triggers (app_id, received_at DESC, id DESC);
-- ListFailedTriggers filtered by webhook, and the per-webhook count retention.
CREATE INDEX failed_triggers_webhook_received ON failed_triggers (webhook_id, received_at DESC, id DESC);
-- The age retention.
CREATE INDEX failed_triggers_received ON failed_triggers (received_at);
