-- Unauthenticated rejections (API_KEY_*) are sampled by the data planes: one stored row per webhook,
-- data plane and interval carries how many more were answered without being stored.
ALTER TABLE failed_triggers ADD COLUMN suppressed_count BIGINT NOT NULL DEFAULT 0;
