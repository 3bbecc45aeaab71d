package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

type subjectStore struct{ q *queries }

const subjectColumns = `id, tenant_id, pseudonym, email_index, profile, key_id, locale, state,
	created_at, updated_at, erased_at, apple_id_index`

func scanSubject(s scanner) (store.Subject, error) {
	var x store.Subject
	var state string
	var created, updated, erased int64
	err := s.Scan(&x.ID, &x.TenantID, &x.Pseudonym, &x.EmailIndex, &x.Profile, &x.KeyID, &x.Locale, &state,
		&created, &updated, &erased, &x.AppleIDIndex)
	x.EmailIndex, x.AppleIDIndex, x.Profile, x.State = nonEmpty(x.EmailIndex), nonEmpty(x.AppleIDIndex), nonEmpty(x.Profile), store.SubjectState(state)
	x.CreatedAt, x.UpdatedAt, x.ErasedAt = fromMicros(created), fromMicros(updated), fromMicros(erased)
	return x, err
}

func (s subjectStore) Create(ctx context.Context, x store.Subject) error {
	if err := s.q.holdTenant(ctx, "creating subject", x.TenantID); err != nil {
		return err
	}
	if err := s.checkAccountNames(ctx, "creating subject", x); err != nil {
		return err
	}
	return s.q.insert(ctx, "creating subject", `INSERT INTO subjects (`+subjectColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		x.ID, x.TenantID, x.Pseudonym, blob(x.EmailIndex), blob(x.Profile), x.KeyID, x.Locale, string(x.State),
		micros(x.CreatedAt), micros(x.UpdatedAt), micros(x.ErasedAt), blob(x.AppleIDIndex))
}

// checkAccountNames refuses x's e-mail or Apple account index when another
// person of the tenant has it as either. Checked before writing: on
// PostgreSQL a unique violation would abort the caller's transaction, and
// the unique indexes see one column each.
func (s subjectStore) checkAccountNames(ctx context.Context, what string, x store.Subject) error {
	if len(x.EmailIndex) == 0 && len(x.AppleIDIndex) == 0 {
		return nil
	}
	if s.q.inTx && s.q.db.dialect.name == "postgres" {
		// Under read committed two writers could each find a name free and
		// take it, one as an e-mail and one as an account, which no unique
		// index sees: they take the tenant's name lock in turn. (SQLite's
		// single writer runs them one at a time already.)
		if _, err := s.q.x.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
			"steward.subject-names:"+x.TenantID); err != nil {
			return mapErr(what, err)
		}
	}
	// An absent index is NULL, which IN matches to nothing.
	n, err := s.q.count(ctx, what, `SELECT COUNT(*) FROM subjects WHERE tenant_id = $1 AND id <> $2
		AND (email_index IN ($3, $4) OR apple_id_index IN ($3, $4))`, x.TenantID, x.ID, blob(x.EmailIndex), blob(x.AppleIDIndex))
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("sqlstore: %s: an e-mail or account index is another person's: %w", what, store.ErrConflict)
	}
	return nil
}

func (s subjectStore) Get(ctx context.Context, tenantID, id string) (store.Subject, error) {
	x, err := scanSubject(s.q.x.QueryRowContext(ctx, `SELECT `+subjectColumns+` FROM subjects
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return x, mapErr("reading subject", err)
}

func (s subjectStore) GetByEmailIndex(ctx context.Context, tenantID string, index []byte) (store.Subject, error) {
	if len(index) == 0 { // stored as NULL, which matches nothing
		return store.Subject{}, fmt.Errorf("sqlstore: reading subject by e-mail: %w", store.ErrNotFound)
	}
	x, err := scanSubject(s.q.x.QueryRowContext(ctx, `SELECT `+subjectColumns+` FROM subjects
		WHERE tenant_id = $1 AND email_index = $2`, tenantID, index))
	return x, mapErr("reading subject by e-mail", err)
}

func (s subjectStore) GetByAccountIndex(ctx context.Context, tenantID string, index []byte) (store.Subject, error) {
	if len(index) == 0 {
		return store.Subject{}, fmt.Errorf("sqlstore: reading subject by account: %w", store.ErrNotFound)
	}
	x, err := scanSubject(s.q.x.QueryRowContext(ctx, `SELECT `+subjectColumns+` FROM subjects
		WHERE tenant_id = $1 AND (email_index = $2 OR apple_id_index = $2)`, tenantID, index))
	return x, mapErr("reading subject by account", err)
}

func (s subjectStore) List(ctx context.Context, tenantID string, p store.Page) ([]store.Subject, error) {
	after, limit := pageArgs(p)
	rows, err := s.q.x.QueryContext(ctx, `SELECT `+subjectColumns+` FROM subjects
		WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, tenantID, after, limit)
	return collect(rows, err, "listing subjects", scanSubject)
}

// Update checks the e-mail index first: on PostgreSQL a unique violation
// would abort the caller's transaction.
func (s subjectStore) Update(ctx context.Context, x store.Subject) error {
	if err := s.checkAccountNames(ctx, "updating subject", x); err != nil {
		return err
	}
	return s.q.execOne(ctx, "updating subject", `UPDATE subjects SET email_index = $3, profile = $4, key_id = $5,
		locale = $6, state = $7, updated_at = $8, erased_at = $9, apple_id_index = $10 WHERE tenant_id = $1 AND id = $2`,
		x.TenantID, x.ID, blob(x.EmailIndex), blob(x.Profile), x.KeyID, x.Locale, string(x.State),
		micros(x.UpdatedAt), micros(x.ErasedAt), blob(x.AppleIDIndex))
}

type deviceStore struct{ q *queries }

// deviceWriteColumns are the columns DeviceStore writes; the management
// projection (os_version … stale_since) is written by ManagedDeviceStore
// only, so a new device starts with compliance 'unknown'.
const deviceWriteColumns = `id, tenant_id, subject_id, ownership, platform, state, serial_index, udid_index, key_id,
	enrolled_at, last_seen_at, deprovisioned_at, created_at, updated_at`

// deviceColumns are the columns every device read scans (scanDevice).
const deviceColumns = deviceWriteColumns + `, os_version, model, compliance, compliance_at, stale_since`

func scanDevice(s scanner) (store.Device, error) {
	var d store.Device
	var enrolled, seen, deprovisioned, created, updated, complianceAt, staleSince int64
	err := s.Scan(&d.ID, &d.TenantID, &d.SubjectID, &d.Ownership, &d.Platform, &d.State, &d.SerialIndex,
		&d.UDIDIndex, &d.KeyID, &enrolled, &seen, &deprovisioned, &created, &updated,
		&d.OSVersion, &d.Model, &d.Compliance, &complianceAt, &staleSince)
	d.SerialIndex, d.UDIDIndex = nonEmpty(d.SerialIndex), nonEmpty(d.UDIDIndex)
	d.EnrolledAt, d.LastSeenAt, d.DeprovisionedAt = fromMicros(enrolled), fromMicros(seen), fromMicros(deprovisioned)
	d.CreatedAt, d.UpdatedAt = fromMicros(created), fromMicros(updated)
	d.ComplianceAt, d.StaleSince = fromMicros(complianceAt), fromMicros(staleSince)
	return d, err
}

func (s deviceStore) Create(ctx context.Context, d store.Device) error {
	if err := s.q.holdTenant(ctx, "creating device", d.TenantID); err != nil {
		return err
	}
	return s.q.insert(ctx, "creating device", `INSERT INTO devices (`+deviceWriteColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		d.ID, d.TenantID, d.SubjectID, d.Ownership, d.Platform, d.State, blob(d.SerialIndex), blob(d.UDIDIndex),
		d.KeyID, micros(d.EnrolledAt), micros(d.LastSeenAt), micros(d.DeprovisionedAt), micros(d.CreatedAt),
		micros(d.UpdatedAt))
}

func (s deviceStore) Get(ctx context.Context, tenantID, id string) (store.Device, error) {
	d, err := scanDevice(s.q.x.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return d, mapErr("reading device", err)
}

func (s deviceStore) GetMany(ctx context.Context, tenantID string, ids []string) (map[string]store.Device, error) {
	out := make(map[string]store.Device, len(ids))
	err := forChunks(ids, func(chunk []string) error {
		marks, args := placeholders(chunk, 2)
		rows, err := s.q.x.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices
			WHERE tenant_id = $1 AND id IN (`+marks+`)`, append([]any{tenantID}, args...)...)
		ds, err := collect(rows, err, "reading devices", scanDevice)
		for _, d := range ds {
			out[d.ID] = d
		}
		return err
	})
	return out, err
}

func (s deviceStore) List(ctx context.Context, tenantID string, f store.DeviceFilter) ([]store.Device, error) {
	after, limit := pageArgs(f.Page)
	query := `SELECT ` + deviceColumns + ` FROM devices WHERE tenant_id = $1 AND id > $2`
	args := []any{tenantID, after}
	if f.SubjectID != "" {
		args = append(args, f.SubjectID)
		query += ` AND subject_id = $` + strconv.Itoa(len(args))
	}
	if len(f.SerialIndex) > 0 {
		args = append(args, f.SerialIndex)
		query += ` AND serial_index = $` + strconv.Itoa(len(args))
	}
	args = append(args, limit)
	query += ` ORDER BY id LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.q.x.QueryContext(ctx, query, args...)
	return collect(rows, err, "listing devices", scanDevice)
}

func (s deviceStore) Update(ctx context.Context, d store.Device) error {
	return s.q.execOne(ctx, "updating device", `UPDATE devices SET subject_id = $3, ownership = $4, platform = $5,
		state = $6, serial_index = $7, udid_index = $8, key_id = $9, enrolled_at = $10, last_seen_at = $11,
		deprovisioned_at = $12, updated_at = $13 WHERE tenant_id = $1 AND id = $2`,
		d.TenantID, d.ID, d.SubjectID, d.Ownership, d.Platform, d.State, blob(d.SerialIndex), blob(d.UDIDIndex),
		d.KeyID, micros(d.EnrolledAt), micros(d.LastSeenAt), micros(d.DeprovisionedAt), micros(d.UpdatedAt))
}

// ClearIdentifierIndexes touches only devices that still have an index, so
// that its count says how many could still be found.
func (s deviceStore) ClearIdentifierIndexes(ctx context.Context, tenantID, ownership string) (int, error) {
	return s.q.exec(ctx, "clearing device identifier indexes", `UPDATE devices SET serial_index = NULL, udid_index = NULL
		WHERE tenant_id = $1 AND ownership = $2 AND (serial_index IS NOT NULL OR udid_index IS NOT NULL)`, tenantID, ownership)
}

// Touch never moves LastSeenAt backwards: check-ins of one device can be
// handled out of order by different nodes.
func (s deviceStore) Touch(ctx context.Context, tenantID, id string, at time.Time) error {
	return s.q.execOne(ctx, "recording device check-in", `UPDATE devices
		SET last_seen_at = CASE WHEN last_seen_at < $3 THEN $3 ELSE last_seen_at END, stale_since = 0
		WHERE tenant_id = $1 AND id = $2`, tenantID, id, micros(at))
}
