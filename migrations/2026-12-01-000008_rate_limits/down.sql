DROP TABLE data_plane_presence;
ALTER TABLE webhooks
    DROP CONSTRAINT webhooks_rate_limit_burst_needs_rate,
    DROP COLUMN rate_limit_burst,
    DROP COLUMN rate_limit_per_second;
