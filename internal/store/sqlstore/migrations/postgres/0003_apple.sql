-- Apple MDM: enrolments, device channels and the command queue.

CREATE TABLE enrolments (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    ownership        TEXT NOT NULL,
    subject_id       TEXT NOT NULL DEFAULT '',
    group_id         TEXT NOT NULL DEFAULT '',
    notice_version   BIGINT NOT NULL,
    user_enrollment  INTEGER NOT NULL DEFAULT 0,
    allow_full_wipe  INTEGER NOT NULL DEFAULT 0,
    secret_hash      BYTEA NOT NULL UNIQUE,
    state            TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    device_id        TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX enrolments_tenant ON enrolments(tenant_id, id);

CREATE TABLE apple_channels (
    device_id         TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    cert_fingerprint  BYTEA NOT NULL UNIQUE,
    cert_not_after    BIGINT NOT NULL,
    enrolment_id      TEXT NOT NULL,
    channel_index     BYTEA NOT NULL,
    topic             TEXT NOT NULL DEFAULT '',
    push_token        BYTEA,
    push_magic        TEXT NOT NULL DEFAULT '',
    unlock_token      BYTEA,
    bootstrap         BYTEA,
    checked_out       INTEGER NOT NULL DEFAULT 0,
    last_checkin      BIGINT NOT NULL DEFAULT 0,
    -- The push queue: a device due a push, and how often it was tried.
    push_due_at       BIGINT NOT NULL DEFAULT 0,
    push_attempts     INTEGER NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX apple_channels_tenant ON apple_channels(tenant_id, device_id);
-- One device per enrolment, whatever races.
CREATE UNIQUE INDEX apple_channels_enrolment ON apple_channels(enrolment_id);
CREATE INDEX apple_channels_push ON apple_channels(push_due_at);

CREATE TABLE commands (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    request_type  TEXT NOT NULL,
    payload       BYTEA NOT NULL,
    state         TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    error_chain   TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    sent_at       BIGINT NOT NULL DEFAULT 0,
    completed_at  BIGINT NOT NULL DEFAULT 0
);
-- The queue read: a device's open commands in order.
CREATE INDEX commands_device ON commands(tenant_id, device_id, state, id);
CREATE INDEX commands_created ON commands(created_at);
