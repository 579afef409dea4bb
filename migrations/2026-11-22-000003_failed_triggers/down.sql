DROP TABLE failed_triggers;
