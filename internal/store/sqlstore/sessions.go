package sqlstore

import (
	"context"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type sessionStore struct{ q *queries }

const sessionColumns = `id, admin_id, tenant_id, kind, secret_hash, csrf_hash, mfa_verified, source_ip, user_agent,
	created_at, last_seen_at, idle_expiry, abs_expiry, revoked_at`

func scanSession(s scanner) (store.Session, error) {
	var x store.Session
	var created, seen, idle, abs, revoked int64
	err := s.Scan(&x.ID, &x.AdminID, &x.TenantID, &x.Kind, &x.SecretHash, &x.CSRFHash, &x.MFAVerified, &x.SourceIP,
		&x.UserAgent, &created, &seen, &idle, &abs, &revoked)
	x.SecretHash, x.CSRFHash = nonEmpty(x.SecretHash), nonEmpty(x.CSRFHash)
	x.CreatedAt, x.LastSeenAt, x.IdleExpiry = fromMicros(created), fromMicros(seen), fromMicros(idle)
	x.AbsExpiry, x.RevokedAt = fromMicros(abs), fromMicros(revoked)
	return x, err
}

func (s sessionStore) Create(ctx context.Context, x store.Session) error {
	return s.q.insert(ctx, "creating session", `INSERT INTO sessions (`+sessionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		x.ID, x.AdminID, x.TenantID, string(x.Kind), x.SecretHash, blob(x.CSRFHash), boolInt(x.MFAVerified),
		x.SourceIP, x.UserAgent, micros(x.CreatedAt), micros(x.LastSeenAt), micros(x.IdleExpiry),
		micros(x.AbsExpiry), micros(x.RevokedAt))
}

func (s sessionStore) GetBySecretHash(ctx context.Context, hash []byte) (store.Session, error) {
	x, err := scanSession(s.q.x.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE secret_hash = $1`, hash))
	return x, mapErr("reading session", err)
}

func (s sessionStore) Touch(ctx context.Context, id string, lastSeen, idleExpiry time.Time) error {
	return s.q.execOne(ctx, "touching session", `UPDATE sessions SET last_seen_at = $2, idle_expiry = $3
		WHERE id = $1`, id, micros(lastSeen), micros(idleExpiry))
}

// Update matches the session by ID and admin, the pair every caller holds.
func (s sessionStore) Update(ctx context.Context, x store.Session) error {
	return s.q.execOne(ctx, "updating session", `UPDATE sessions SET mfa_verified = $3, csrf_hash = $4,
		idle_expiry = $5, abs_expiry = $6 WHERE id = $1 AND admin_id = $2`,
		x.ID, x.AdminID, boolInt(x.MFAVerified), blob(x.CSRFHash), micros(x.IdleExpiry), micros(x.AbsExpiry))
}

func (s sessionStore) ListForAdmin(ctx context.Context, adminID string) ([]store.Session, error) {
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE admin_id = $1 ORDER BY id`, adminID)
	return collect(rows, err, "listing sessions", scanSession)
}

// Revoke keeps the first revocation time when called twice.
func (s sessionStore) Revoke(ctx context.Context, adminID, id string, at time.Time) error {
	return s.q.execOne(ctx, "revoking session", `UPDATE sessions
		SET revoked_at = CASE WHEN revoked_at = 0 THEN $3 ELSE revoked_at END
		WHERE admin_id = $1 AND id = $2`, adminID, id, micros(at))
}

func (s sessionStore) Consume(ctx context.Context, adminID, id string, at time.Time) error {
	n, err := s.q.exec(ctx, "consuming session", `UPDATE sessions SET revoked_at = $3
		WHERE admin_id = $1 AND id = $2 AND revoked_at = 0`, adminID, id, micros(at))
	if err == nil && n == 0 {
		return store.ErrConflict
	}
	return err
}

func (s sessionStore) RevokeAllForAdmin(ctx context.Context, adminID, exceptID string, at time.Time) (int, error) {
	return s.q.exec(ctx, "revoking sessions", `UPDATE sessions SET revoked_at = $3
		WHERE admin_id = $1 AND id <> $2 AND revoked_at = 0`, adminID, exceptID, micros(at))
}

func (s sessionStore) DeleteExpired(ctx context.Context, cutoff time.Time) (int, error) {
	c := micros(cutoff)
	return s.q.exec(ctx, "deleting expired sessions", `DELETE FROM sessions
		WHERE abs_expiry < $1 OR (revoked_at <> 0 AND revoked_at < $1)`, c)
}

type tokenStore struct{ q *queries }

const tokenColumns = `id, tenant_id, role_id, name, created_by, secret_hash, expires_at, last_used_at, last_used_ip,
	revoked_at, created_at`

func scanToken(s scanner) (store.APIToken, error) {
	var t store.APIToken
	var expires, used, revoked, created int64
	err := s.Scan(&t.ID, &t.TenantID, &t.RoleID, &t.Name, &t.CreatedBy, &t.SecretHash, &expires, &used,
		&t.LastUsedIP, &revoked, &created)
	t.SecretHash = nonEmpty(t.SecretHash)
	t.ExpiresAt, t.LastUsedAt = fromMicros(expires), fromMicros(used)
	t.RevokedAt, t.CreatedAt = fromMicros(revoked), fromMicros(created)
	return t, err
}

func (s tokenStore) Create(ctx context.Context, t store.APIToken) error {
	return s.q.insert(ctx, "creating API token", `INSERT INTO api_tokens (`+tokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		t.ID, t.TenantID, t.RoleID, t.Name, t.CreatedBy, t.SecretHash, micros(t.ExpiresAt), micros(t.LastUsedAt),
		t.LastUsedIP, micros(t.RevokedAt), micros(t.CreatedAt))
}

func (s tokenStore) GetBySecretHash(ctx context.Context, hash []byte) (store.APIToken, error) {
	t, err := scanToken(s.q.x.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens
		WHERE secret_hash = $1`, hash))
	return t, mapErr("reading API token", err)
}

func (s tokenStore) Get(ctx context.Context, tenantID, id string) (store.APIToken, error) {
	t, err := scanToken(s.q.x.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return t, mapErr("reading API token", err)
}

func (s tokenStore) List(ctx context.Context, tenantID string, p store.Page) ([]store.APIToken, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens
		WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, after, limit)
	return collect(rows, err, "listing API tokens", scanToken)
}

// Revoke keeps the first revocation time when called twice.
func (s tokenStore) Revoke(ctx context.Context, tenantID, id string, at time.Time) error {
	return s.q.execOne(ctx, "revoking API token", `UPDATE api_tokens
		SET revoked_at = CASE WHEN revoked_at = 0 THEN $3 ELSE revoked_at END
		WHERE tenant_id = $1 AND id = $2`, tenantID, id, micros(at))
}

func (s tokenStore) TouchUsed(ctx context.Context, id string, at time.Time, ip string) error {
	return s.q.execOne(ctx, "recording API token use", `UPDATE api_tokens SET last_used_at = $2, last_used_ip = $3
		WHERE id = $1`, id, micros(at), ip)
}
