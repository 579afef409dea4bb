-- Per-webhook rate limits (docs/control-plane.md, "Rate limits"): requests per second and an optional
-- burst (NULL = the rate rounded up). No limit when the rate is NULL.
ALTER TABLE webhooks
    ADD COLUMN rate_limit_per_second DOUBLE PRECISION
        CONSTRAINT webhooks_rate_limit_positive CHECK (rate_limit_per_second > 0),
    ADD COLUMN rate_limit_burst INTEGER
        CONSTRAINT webhooks_rate_limit_burst_positive CHECK (rate_limit_burst >= 1),
    ADD CONSTRAINT webhooks_rate_limit_burst_needs_rate
        CHECK (rate_limit_burst IS NULL OR rate_limit_per_second IS NOT NULL);

-- The ingest data planes connected to any control-plane replica, one row per config stream. Each
-- replica refreshes its own rows every heartbeat interval and deletes a row when its stream ends;
-- rows not refreshed within three intervals (a replica that died) are not counted. Every replica
-- counts the rows per token scope to divide rate limits between the planes of a scope.
CREATE TABLE data_plane_presence (
    session_id UUID PRIMARY KEY,
    replica_id UUID NOT NULL,
    organization_id UUID NOT NULL,
    -- The workspace of the data plane's token; NULL for an organization-wide token.
    workspace_id UUID,
    data_plane_id TEXT NOT NULL,
    refreshed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX data_plane_presence_refreshed ON data_plane_presence (refreshed_at);
CREATE INDEX data_plane_presence_replica ON data_plane_presence (replica_id);
