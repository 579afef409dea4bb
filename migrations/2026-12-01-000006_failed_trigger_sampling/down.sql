ALTER TABLE failed_triggers DROP COLUMN suppressed_count;
