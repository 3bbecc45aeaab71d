package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type adminStore struct{ q *queries }

const adminColumns = `id, tenant_id, email, display_name, password_hash, mfa_secret, mfa_enabled, mfa_last_step,
	disabled, failed_logins, last_failure_at, locked_until, password_set_at, created_at, updated_at`

func scanAdmin(s scanner) (store.Admin, error) {
	var a store.Admin
	var lastFailure, locked, pwSet, created, updated int64
	err := s.Scan(&a.ID, &a.TenantID, &a.Email, &a.DisplayName, &a.PasswordHash, &a.MFASecret, &a.MFAEnabled,
		&a.MFALastStep, &a.Disabled, &a.FailedLogins, &lastFailure, &locked, &pwSet, &created, &updated)
	a.MFASecret = nonEmpty(a.MFASecret)
	a.LastFailureAt, a.LockedUntil, a.PasswordSetAt = fromMicros(lastFailure), fromMicros(locked), fromMicros(pwSet)
	a.CreatedAt, a.UpdatedAt = fromMicros(created), fromMicros(updated)
	return a, err
}

func (s adminStore) Create(ctx context.Context, a store.Admin) error {
	return s.q.insert(ctx, "creating admin", `INSERT INTO admins (`+adminColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		a.ID, a.TenantID, strings.ToLower(a.Email), a.DisplayName, a.PasswordHash, blob(a.MFASecret),
		boolInt(a.MFAEnabled), a.MFALastStep, boolInt(a.Disabled), a.FailedLogins, micros(a.LastFailureAt),
		micros(a.LockedUntil), micros(a.PasswordSetAt), micros(a.CreatedAt), micros(a.UpdatedAt))
}

func (s adminStore) Get(ctx context.Context, tenantID, id string) (store.Admin, error) {
	a, err := scanAdmin(s.q.x.QueryRowContext(ctx, `SELECT `+adminColumns+` FROM admins
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return a, mapErr("reading admin", err)
}

func (s adminStore) GetByID(ctx context.Context, id string) (store.Admin, error) {
	a, err := scanAdmin(s.q.x.QueryRowContext(ctx, `SELECT `+adminColumns+` FROM admins WHERE id = $1`, id))
	return a, mapErr("reading admin", err)
}

func (s adminStore) GetByEmail(ctx context.Context, email string) (store.Admin, error) {
	a, err := scanAdmin(s.q.x.QueryRowContext(ctx, `SELECT `+adminColumns+` FROM admins WHERE email = $1`,
		strings.ToLower(email)))
	return a, mapErr("reading admin by email", err)
}

func (s adminStore) List(ctx context.Context, tenantID string, p store.Page) ([]store.Admin, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+adminColumns+` FROM admins
		WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, after, limit)
	return collect(rows, err, "listing admins", scanAdmin)
}

func (s adminStore) Update(ctx context.Context, a store.Admin) error {
	return s.q.execOne(ctx, "updating admin", `UPDATE admins SET email = $3, display_name = $4,
		password_hash = $5, mfa_enabled = $6, mfa_last_step = $7, disabled = $8,
		failed_logins = $9, last_failure_at = $10, locked_until = $11, password_set_at = $12, updated_at = $13
		WHERE tenant_id = $1 AND id = $2`,
		a.TenantID, a.ID, strings.ToLower(a.Email), a.DisplayName, a.PasswordHash,
		boolInt(a.MFAEnabled), a.MFALastStep, boolInt(a.Disabled), a.FailedLogins, micros(a.LastFailureAt),
		micros(a.LockedUntil), micros(a.PasswordSetAt), micros(a.UpdatedAt))
}

func (s adminStore) SetMFASecret(ctx context.Context, tenantID, id string, sealed []byte) error {
	return s.q.execOne(ctx, "setting an admin's authenticator secret", `UPDATE admins SET mfa_secret = $3
		WHERE tenant_id = $1 AND id = $2`, tenantID, id, blob(sealed))
}

// Delete relies on ON DELETE CASCADE for sessions, assignments, password
// history and recovery codes.
func (s adminStore) Delete(ctx context.Context, tenantID, id string) error {
	return s.q.execOne(ctx, "deleting admin", `DELETE FROM admins WHERE tenant_id = $1 AND id = $2`, tenantID, id)
}

func (s adminStore) Count(ctx context.Context) (int, error) {
	return s.q.count(ctx, "counting admins", `SELECT COUNT(*) FROM admins`)
}

func (s adminStore) AddPasswordHistory(ctx context.Context, adminID, hash string, at time.Time) error {
	_, err := s.q.x.ExecContext(ctx, `INSERT INTO password_history (admin_id, hash, set_at) VALUES ($1, $2, $3)`,
		adminID, hash, micros(at))
	if err != nil && isForeignKeyViolation(err) {
		return fmt.Errorf("sqlstore: adding password history: admin: %w", store.ErrNotFound)
	}
	return mapErr("adding password history", err)
}

func (s adminStore) RecentPasswordHashes(ctx context.Context, adminID string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	rows, err := s.q.x.QueryContext(ctx, `SELECT hash FROM password_history WHERE admin_id = $1
		ORDER BY set_at DESC, ord DESC LIMIT $2`, adminID, n)
	return collect(rows, err, "reading password history", func(s scanner) (string, error) {
		var h string
		return h, s.Scan(&h)
	})
}

func (s adminStore) ReplaceRecoveryCodes(ctx context.Context, adminID string, hashes [][]byte) error {
	if _, err := s.q.exec(ctx, "replacing recovery codes", `DELETE FROM recovery_codes WHERE admin_id = $1`, adminID); err != nil {
		return err
	}
	for _, h := range hashes {
		err := s.q.insert(ctx, "storing recovery codes", `INSERT INTO recovery_codes (admin_id, hash) VALUES ($1, $2)`,
			adminID, h)
		if err != nil {
			return err
		}
	}
	return nil
}

// ConsumeRecoveryCode is a single DELETE: of two concurrent callers only one
// sees a deleted row.
func (s adminStore) ConsumeRecoveryCode(ctx context.Context, adminID string, hash []byte) (bool, error) {
	n, err := s.q.exec(ctx, "consuming recovery code", `DELETE FROM recovery_codes WHERE admin_id = $1 AND hash = $2`,
		adminID, hash)
	return n > 0, err
}

func (s adminStore) CountRecoveryCodes(ctx context.Context, adminID string) (int, error) {
	return s.q.count(ctx, "counting recovery codes", `SELECT COUNT(*) FROM recovery_codes WHERE admin_id = $1`, adminID)
}
