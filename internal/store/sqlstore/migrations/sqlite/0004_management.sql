-- Device management: the device projection, groups, configuration profiles,
-- compliance, remote actions, the app catalogue and group-scoped roles.

-- The searchable, non-personal projection of a device (see store.DeviceProjection).
ALTER TABLE devices ADD COLUMN os_version TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN os_version_key TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN model TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN facts BLOB;
ALTER TABLE devices ADD COLUMN compliance TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE devices ADD COLUMN compliance_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN stale_since INTEGER NOT NULL DEFAULT 0;
CREATE INDEX devices_last_seen ON devices(tenant_id, last_seen_at, id);
CREATE INDEX devices_enrolled ON devices(tenant_id, enrolled_at, id);
CREATE INDEX devices_os ON devices(tenant_id, os_version_key, id);
CREATE INDEX devices_model ON devices(tenant_id, model, id);
CREATE INDEX devices_compliance ON devices(tenant_id, compliance, id);

CREATE TABLE device_groups (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    kind         TEXT NOT NULL,
    rule         BLOB,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE group_members (
    tenant_id  TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (group_id, device_id)
);
CREATE INDEX group_members_device ON group_members(tenant_id, device_id);

-- A role assignment limited to groups: the role's permissions then hold
-- only for devices in one of them.
CREATE TABLE assignment_scopes (
    assignment_id  TEXT NOT NULL REFERENCES assignments(id) ON DELETE CASCADE,
    tenant_id      TEXT NOT NULL,
    group_id       TEXT NOT NULL,
    PRIMARY KEY (assignment_id, group_id)
);
CREATE INDEX assignment_scopes_group ON assignment_scopes(tenant_id, group_id);

CREATE TABLE config_profiles (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    name           TEXT NOT NULL,
    identifier     TEXT NOT NULL,
    kind           TEXT NOT NULL,
    platform       TEXT NOT NULL,
    definition     BLOB,
    sealed         BLOB,
    digest         TEXT NOT NULL,
    payload_types  TEXT NOT NULL DEFAULT '',
    created_by     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (tenant_id, identifier)
);

CREATE TABLE profile_assignments (
    tenant_id   TEXT NOT NULL,
    profile_id  TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (profile_id, group_id)
);
CREATE INDEX profile_assignments_group ON profile_assignments(tenant_id, group_id);

CREATE TABLE device_profiles (
    tenant_id   TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    profile_id  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    status      TEXT NOT NULL,
    command_id  TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (device_id, profile_id)
);
CREATE INDEX device_profiles_profile ON device_profiles(tenant_id, profile_id, device_id);
CREATE INDEX device_profiles_command ON device_profiles(tenant_id, command_id);

CREATE TABLE compliance_policies (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    platform    TEXT NOT NULL DEFAULT '',
    ownership   TEXT NOT NULL DEFAULT '',
    group_id    TEXT NOT NULL DEFAULT '',
    rules       BLOB NOT NULL,
    ladder      BLOB NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_by  TEXT NOT NULL,
    updated_by  TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE device_compliance (
    tenant_id     TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    policy_id     TEXT NOT NULL,
    state         TEXT NOT NULL,
    violations    BLOB,
    since         INTEGER NOT NULL,
    steps         INTEGER NOT NULL DEFAULT 0,
    evaluated_at  INTEGER NOT NULL,
    next_step_at  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, policy_id)
);
CREATE INDEX device_compliance_policy ON device_compliance(tenant_id, policy_id, device_id);
CREATE INDEX device_compliance_due ON device_compliance(next_step_at);

CREATE TABLE compliance_events (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    policy_id   TEXT NOT NULL,
    state       TEXT NOT NULL,
    violations  BLOB,
    action      TEXT NOT NULL DEFAULT '',
    at          INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX compliance_events_device ON compliance_events(tenant_id, device_id, id);
CREATE INDEX compliance_events_expiry ON compliance_events(expires_at);

CREATE TABLE device_actions (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    batch_id      TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    action        TEXT NOT NULL,
    reason        TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    approval_id   TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL,
    command_id    TEXT NOT NULL DEFAULT '',
    error         TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX device_actions_batch ON device_actions(tenant_id, batch_id, id);
CREATE INDEX device_actions_device ON device_actions(tenant_id, device_id, id);
CREATE INDEX device_actions_approval ON device_actions(tenant_id, approval_id);
CREATE INDEX device_actions_command ON device_actions(tenant_id, command_id);

CREATE TABLE catalogue_apps (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    identifier    TEXT NOT NULL,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    store_id      INTEGER NOT NULL DEFAULT 0,
    manifest_url  TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (tenant_id, identifier)
);

CREATE TABLE app_assignments (
    tenant_id  TEXT NOT NULL,
    app_id     TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    mode       TEXT NOT NULL,
    PRIMARY KEY (app_id, group_id)
);
CREATE INDEX app_assignments_group ON app_assignments(tenant_id, group_id);

CREATE TABLE report_schedules (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    format           TEXT NOT NULL,
    recipients       TEXT NOT NULL,
    every            TEXT NOT NULL,
    link_days        INTEGER NOT NULL,
    password_sealed  BLOB NOT NULL,
    next_run_at      INTEGER NOT NULL,
    last_run_at      INTEGER NOT NULL DEFAULT 0,
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX report_schedules_tenant ON report_schedules(tenant_id, id);
CREATE INDEX report_schedules_due ON report_schedules(next_run_at);

CREATE TABLE published_reports (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    schedule_id  TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    archive      BLOB NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX published_reports_expiry ON published_reports(expires_at);

-- Every report through the privacy gate looks a device's data key up by
-- owner, live or destroyed; the partial unique index covers live keys only.
CREATE INDEX data_keys_owner_any ON data_keys(tenant_id, owner, destroyed_at);
-- A device's standings, read at every evaluation.
CREATE INDEX device_compliance_device ON device_compliance(tenant_id, device_id);
-- One field across a tenant's devices (app lists for a group or policy).
CREATE INDEX inventory_values_field ON inventory_values(tenant_id, field, device_id);
