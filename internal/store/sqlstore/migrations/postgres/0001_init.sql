-- Times are BIGINT unix microseconds UTC (0 = unset); byte strings are BYTEA.
CREATE TABLE tenants (
    id            TEXT COLLATE "C" PRIMARY KEY,
    parent_id     TEXT COLLATE "C" REFERENCES tenants(id),
    kind          TEXT COLLATE "C" NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    slug          TEXT COLLATE "C" NOT NULL UNIQUE,
    require_mfa   BIGINT NOT NULL DEFAULT 0,
    allowed_cidrs TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX tenants_parent ON tenants(parent_id, id);

CREATE TABLE admins (
    id              TEXT COLLATE "C" PRIMARY KEY,
    tenant_id       TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    email           TEXT COLLATE "C" NOT NULL UNIQUE,
    display_name    TEXT COLLATE "C" NOT NULL,
    password_hash   TEXT COLLATE "C" NOT NULL,
    mfa_secret      BYTEA,
    mfa_enabled     BIGINT NOT NULL DEFAULT 0,
    mfa_last_step   BIGINT NOT NULL DEFAULT 0,
    disabled        BIGINT NOT NULL DEFAULT 0,
    failed_logins   BIGINT NOT NULL DEFAULT 0,
    last_failure_at BIGINT NOT NULL DEFAULT 0,
    locked_until    BIGINT NOT NULL DEFAULT 0,
    password_set_at BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX admins_tenant ON admins(tenant_id, id);

CREATE TABLE password_history (
    admin_id TEXT COLLATE "C" NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    hash     TEXT COLLATE "C" NOT NULL,
    set_at   BIGINT NOT NULL,
    ord      BIGSERIAL PRIMARY KEY
);
CREATE INDEX password_history_admin ON password_history(admin_id, set_at);

CREATE TABLE recovery_codes (
    admin_id TEXT COLLATE "C" NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    hash     BYTEA NOT NULL,
    PRIMARY KEY (admin_id, hash)
);

CREATE TABLE roles (
    id          TEXT COLLATE "C" PRIMARY KEY,
    tenant_id   TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C" NOT NULL,
    permissions TEXT COLLATE "C" NOT NULL,
    built_in    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE assignments (
    id         TEXT COLLATE "C" PRIMARY KEY,
    admin_id   TEXT COLLATE "C" NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    tenant_id  TEXT COLLATE "C" NOT NULL,
    role_id    TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (admin_id, tenant_id, role_id)
);
CREATE INDEX assignments_tenant ON assignments(tenant_id, id);
CREATE INDEX assignments_role ON assignments(tenant_id, role_id);

CREATE TABLE sessions (
    id           TEXT COLLATE "C" PRIMARY KEY,
    admin_id     TEXT COLLATE "C" NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    tenant_id    TEXT COLLATE "C" NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    secret_hash  BYTEA NOT NULL UNIQUE,
    csrf_hash    BYTEA,
    mfa_verified BIGINT NOT NULL DEFAULT 0,
    source_ip    TEXT COLLATE "C" NOT NULL,
    user_agent   TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    idle_expiry  BIGINT NOT NULL,
    abs_expiry   BIGINT NOT NULL,
    revoked_at   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_admin ON sessions(admin_id, id);

CREATE TABLE api_tokens (
    id           TEXT COLLATE "C" PRIMARY KEY,
    tenant_id    TEXT COLLATE "C" NOT NULL,
    role_id      TEXT COLLATE "C" NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    created_by   TEXT COLLATE "C" NOT NULL,
    secret_hash  BYTEA NOT NULL UNIQUE,
    expires_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0,
    last_used_ip TEXT COLLATE "C" NOT NULL DEFAULT '',
    revoked_at   BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);
CREATE INDEX api_tokens_tenant ON api_tokens(tenant_id, id);

CREATE TABLE audit_entries (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL,
    time        BIGINT NOT NULL,
    actor_type  TEXT COLLATE "C" NOT NULL,
    actor_id    TEXT COLLATE "C" NOT NULL,
    action      TEXT COLLATE "C" NOT NULL,
    target_type TEXT COLLATE "C" NOT NULL,
    target_id   TEXT COLLATE "C" NOT NULL,
    outcome     TEXT COLLATE "C" NOT NULL,
    source_ip   TEXT COLLATE "C" NOT NULL,
    request_id  TEXT COLLATE "C" NOT NULL,
    reason      TEXT COLLATE "C" NOT NULL,
    details     TEXT COLLATE "C",
    prev_hash   BYTEA,
    hash        BYTEA,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_entries_action ON audit_entries(tenant_id, action, seq);
CREATE INDEX audit_entries_actor ON audit_entries(tenant_id, actor_id, seq);
CREATE INDEX audit_entries_target ON audit_entries(tenant_id, target_type, target_id, seq);
CREATE INDEX audit_entries_time ON audit_entries(tenant_id, time, seq);

CREATE TABLE audit_heads (
    tenant_id TEXT COLLATE "C" PRIMARY KEY,
    seq       BIGINT NOT NULL,
    hash      BYTEA,
    base_seq  BIGINT NOT NULL DEFAULT 0,
    base_hash BYTEA
);

CREATE TABLE audit_checkpoints (
    tenant_id TEXT COLLATE "C" NOT NULL,
    seq       BIGINT NOT NULL,
    hash      BYTEA,
    time      BIGINT NOT NULL,
    key_id    TEXT COLLATE "C" NOT NULL,
    signature BYTEA,
    PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE settings (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA
);

CREATE TABLE leases (
    name    TEXT COLLATE "C" PRIMARY KEY,
    holder  TEXT COLLATE "C" NOT NULL,
    expires BIGINT NOT NULL
);
