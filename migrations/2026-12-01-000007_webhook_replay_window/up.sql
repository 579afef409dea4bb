-- Seconds a data plane remembers accepted deliveries to answer their replays (0 = off).
ALTER TABLE webhooks ADD COLUMN replay_window_seconds INTEGER NOT NULL DEFAULT 0
    CHECK (replay_window_seconds BETWEEN 0 AND 86400);
