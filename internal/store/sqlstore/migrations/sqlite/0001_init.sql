-- Times are BIGINT unix microseconds UTC (0 = unset); byte strings are BLOB.
CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,
    parent_id     TEXT REFERENCES tenants(id),
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    slug          TEXT NOT NULL UNIQUE,
    require_mfa   INTEGER NOT NULL DEFAULT 0,
    allowed_cidrs TEXT NOT NULL DEFAULT '[]',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX tenants_parent ON tenants(parent_id, id);

CREATE TABLE admins (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    email           TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    mfa_secret      BLOB,
    mfa_enabled     INTEGER NOT NULL DEFAULT 0,
    mfa_last_step   INTEGER NOT NULL DEFAULT 0,
    disabled        INTEGER NOT NULL DEFAULT 0,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    last_failure_at INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER NOT NULL DEFAULT 0,
    password_set_at INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX admins_tenant ON admins(tenant_id, id);

CREATE TABLE password_history (
    admin_id TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    hash     TEXT NOT NULL,
    set_at   INTEGER NOT NULL,
    ord      INTEGER PRIMARY KEY AUTOINCREMENT
);
CREATE INDEX password_history_admin ON password_history(admin_id, set_at);

CREATE TABLE recovery_codes (
    admin_id TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    hash     BLOB NOT NULL,
    PRIMARY KEY (admin_id, hash)
);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    permissions TEXT NOT NULL,
    built_in    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE assignments (
    id         TEXT PRIMARY KEY,
    admin_id   TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    tenant_id  TEXT NOT NULL,
    role_id    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (admin_id, tenant_id, role_id)
);
CREATE INDEX assignments_tenant ON assignments(tenant_id, id);
CREATE INDEX assignments_role ON assignments(tenant_id, role_id);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    admin_id     TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    tenant_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    secret_hash  BLOB NOT NULL UNIQUE,
    csrf_hash    BLOB,
    mfa_verified INTEGER NOT NULL DEFAULT 0,
    source_ip    TEXT NOT NULL,
    user_agent   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    idle_expiry  INTEGER NOT NULL,
    abs_expiry   INTEGER NOT NULL,
    revoked_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_admin ON sessions(admin_id, id);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    role_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    secret_hash  BLOB NOT NULL UNIQUE,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0,
    last_used_ip TEXT NOT NULL DEFAULT '',
    revoked_at   INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);
CREATE INDEX api_tokens_tenant ON api_tokens(tenant_id, id);

CREATE TABLE audit_entries (
    tenant_id   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    time        INTEGER NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    source_ip   TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    details     TEXT,
    prev_hash   BLOB,
    hash        BLOB,
    PRIMARY KEY (tenant_id, seq)
) WITHOUT ROWID;
CREATE INDEX audit_entries_action ON audit_entries(tenant_id, action, seq);
CREATE INDEX audit_entries_actor ON audit_entries(tenant_id, actor_id, seq);
CREATE INDEX audit_entries_target ON audit_entries(tenant_id, target_type, target_id, seq);
CREATE INDEX audit_entries_time ON audit_entries(tenant_id, time, seq);

CREATE TABLE audit_heads (
    tenant_id TEXT PRIMARY KEY,
    seq       INTEGER NOT NULL,
    hash      BLOB,
    base_seq  INTEGER NOT NULL DEFAULT 0,
    base_hash BLOB
);

CREATE TABLE audit_checkpoints (
    tenant_id TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    hash      BLOB,
    time      INTEGER NOT NULL,
    key_id    TEXT NOT NULL,
    signature BLOB,
    PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BLOB
);

CREATE TABLE leases (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    expires INTEGER NOT NULL
);
