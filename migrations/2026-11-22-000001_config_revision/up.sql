-- One global config revision for everything data planes serve, and a log of what each revision changed.
-- Every change that affects data planes bumps the revision in the same transaction as the change, and
-- writes one row here per webhook it touched, so config distribution can stream deltas.
CREATE TABLE config_revision (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    revision BIGINT NOT NULL
);
INSERT INTO config_revision (singleton, revision) VALUES (TRUE, 0);

CREATE TABLE config_changes (
    id BIGSERIAL PRIMARY KEY,
    revision BIGINT NOT NULL,
    webhook_id UUID NOT NULL,
    kind TEXT NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX config_changes_revision ON config_changes (revision);
