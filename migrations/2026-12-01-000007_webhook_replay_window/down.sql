ALTER TABLE webhooks DROP COLUMN replay_window_seconds;
