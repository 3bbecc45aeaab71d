-- Decisions a restored backup must not undo: a revoked enrolment link and a
-- deleted customer tenant. Like the key vault (tenant_keysets, data_keys),
-- this table is never in a backup, so after a restore it still says what was
-- decided since, and reconciliation applies it again. The tenant is in
-- scope_id, not tenant_id: deleting a tenant empties every table with a
-- tenant_id column, and the record of that deletion must outlive it.
CREATE TABLE vault_tombstones (
    kind       TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    scope_id   TEXT NOT NULL,
    decided_at INTEGER NOT NULL,
    -- When the decision stops mattering (a revoked link past its use); 0: never.
    until_at   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, subject_id)
);
