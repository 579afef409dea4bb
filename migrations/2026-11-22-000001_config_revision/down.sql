DROP TABLE config_changes; DROP TABLE config_revision;
