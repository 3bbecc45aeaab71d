-- Privacy core. Times are unix microseconds UTC (0 = unset). Personal values
-- are ciphertexts under a data key from data_keys; no plaintext personal
-- datum is stored in these tables.

-- Data subjects: the people whose data Steward holds. After erasure only the
-- ID and pseudonym remain, for the audit trail.
CREATE TABLE subjects (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    pseudonym    TEXT NOT NULL,
    email_index  BYTEA,
    profile      BYTEA,
    key_id       TEXT NOT NULL DEFAULT '',
    locale       TEXT NOT NULL DEFAULT 'en',
    state        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    erased_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX subjects_tenant ON subjects(tenant_id, id);
CREATE UNIQUE INDEX subjects_email ON subjects(tenant_id, email_index);

CREATE TABLE devices (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    subject_id        TEXT NOT NULL DEFAULT '',
    ownership         TEXT NOT NULL,
    platform          TEXT NOT NULL,
    state             TEXT NOT NULL,
    serial_index      BYTEA,
    udid_index        BYTEA,
    key_id            TEXT NOT NULL DEFAULT '',
    enrolled_at       BIGINT NOT NULL DEFAULT 0,
    last_seen_at      BIGINT NOT NULL DEFAULT 0,
    deprovisioned_at  BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX devices_tenant ON devices(tenant_id, id);
CREATE INDEX devices_subject ON devices(tenant_id, subject_id);
CREATE INDEX devices_serial ON devices(tenant_id, serial_index);
CREATE INDEX devices_udid ON devices(tenant_id, udid_index);

-- The key vault. Never written to backups: destroying a key here makes every
-- copy of the data it protects unreadable, backups included.
CREATE TABLE tenant_keysets (
    tenant_id      TEXT PRIMARY KEY,
    aead_keyset    BYTEA NOT NULL,
    index_keyset   BYTEA NOT NULL,
    master_key_id  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    rotated_at     BIGINT NOT NULL
);
CREATE TABLE data_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    owner         TEXT NOT NULL,
    subject_id    TEXT NOT NULL DEFAULT '',
    wrapped       BYTEA,
    created_at    BIGINT NOT NULL,
    destroyed_at  BIGINT NOT NULL DEFAULT 0
);
-- One live key per owner; destroyed keys stay as tombstones.
CREATE UNIQUE INDEX data_keys_owner ON data_keys(tenant_id, owner) WHERE destroyed_at = 0;
CREATE INDEX data_keys_subject ON data_keys(tenant_id, subject_id);

-- Current inventory: one row per device and catalogue field, written only by
-- the privacy gate. expires_at 0 means "while enrolled".
CREATE TABLE inventory_values (
    tenant_id     TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    field         TEXT NOT NULL,
    category      TEXT NOT NULL,
    subject_id    TEXT NOT NULL DEFAULT '',
    hidden        INTEGER NOT NULL DEFAULT 0,
    value         BYTEA,
    ciphertext    BYTEA,
    key_id        TEXT NOT NULL DEFAULT '',
    digest        BYTEA,
    collected_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, device_id, field)
);
CREATE INDEX inventory_values_expiry ON inventory_values(expires_at);
CREATE INDEX inventory_values_subject ON inventory_values(tenant_id, subject_id);

-- Superseded values, kept for the inventory-history retention period.
CREATE TABLE inventory_history (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    field         TEXT NOT NULL,
    category      TEXT NOT NULL,
    subject_id    TEXT NOT NULL DEFAULT '',
    hidden        INTEGER NOT NULL DEFAULT 0,
    value         BYTEA,
    ciphertext    BYTEA,
    key_id        TEXT NOT NULL DEFAULT '',
    collected_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX inventory_history_expiry ON inventory_history(expires_at);
CREATE INDEX inventory_history_device ON inventory_history(tenant_id, device_id, field, collected_at);
CREATE INDEX inventory_history_subject ON inventory_history(tenant_id, subject_id);

-- Per-tenant privacy settings (collection policy, retention, outbound flows,
-- notice versions) as one versioned JSON document.
CREATE TABLE privacy_settings (
    tenant_id   TEXT PRIMARY KEY,
    doc         TEXT NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Widening changes waiting for a second admin.
CREATE TABLE approvals (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    state         TEXT NOT NULL,
    decided_by    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    decided_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX approvals_tenant ON approvals(tenant_id, id);

CREATE TABLE notices (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    ownership     TEXT NOT NULL,
    version       BIGINT NOT NULL,
    language      TEXT NOT NULL,
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    published_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX notices_version ON notices(tenant_id, ownership, version, language);

CREATE TABLE consents (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    device_id       TEXT NOT NULL DEFAULT '',
    ownership       TEXT NOT NULL,
    notice_version  BIGINT NOT NULL,
    language        TEXT NOT NULL,
    method          TEXT NOT NULL,
    allow_full_wipe INTEGER NOT NULL DEFAULT 0,
    accepted_at     BIGINT NOT NULL,
    withdrawn_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX consents_subject ON consents(tenant_id, subject_id, id);

-- Who read whose personal data, when and why; the subject can read theirs.
CREATE TABLE access_records (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    device_id    TEXT NOT NULL DEFAULT '',
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    fields       TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    at           BIGINT NOT NULL
);
CREATE INDEX access_records_subject ON access_records(tenant_id, subject_id, id);
CREATE INDEX access_records_at ON access_records(at);

-- Time-limited reveals of masked fields.
CREATE TABLE reveals (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    admin_id    TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    fields      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX reveals_admin ON reveals(tenant_id, admin_id, device_id, expires_at);

CREATE TABLE erasures (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    subject_id   TEXT NOT NULL DEFAULT '',
    device_id    TEXT NOT NULL DEFAULT '',
    certificate  TEXT NOT NULL,
    signature    BYTEA NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX erasures_tenant ON erasures(tenant_id, id);

-- Outgoing mail, sent by a background job (the outbox).
CREATE TABLE notifications (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    subject_id       TEXT NOT NULL,
    kind             TEXT NOT NULL,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    sent_at          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX notifications_due ON notifications(state, next_attempt_at);
CREATE INDEX notifications_subject ON notifications(tenant_id, subject_id, id);

-- Employee portal tokens (hash only), one subject each.
CREATE TABLE portal_tokens (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX portal_tokens_subject ON portal_tokens(tenant_id, subject_id);
