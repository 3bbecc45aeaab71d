package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/steward-mdm/steward/internal/store"
)

type tenantStore struct{ q *queries }

const tenantColumns = `id, COALESCE(parent_id, ''), kind, name, slug, require_mfa, allowed_cidrs, created_at, updated_at`

func scanTenant(s scanner) (store.Tenant, error) {
	var t store.Tenant
	var cidrs string
	var created, updated int64
	if err := s.Scan(&t.ID, &t.ParentID, &t.Kind, &t.Name, &t.Slug, &t.RequireMFA, &cidrs, &created, &updated); err != nil {
		return t, err
	}
	var err error
	t.AllowedCIDRs, err = decodeStrings(cidrs)
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(updated)
	return t, err
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s tenantStore) Create(ctx context.Context, t store.Tenant) error {
	cidrs, err := encodeStrings(t.AllowedCIDRs)
	if err != nil {
		return fmt.Errorf("sqlstore: encoding allowed CIDRs: %w", err)
	}
	if t.ParentID != "" {
		// Checked first: on PostgreSQL a foreign-key failure would abort the caller's transaction.
		n, err := s.q.count(ctx, "checking parent tenant", `SELECT COUNT(*) FROM tenants WHERE id = $1`, t.ParentID)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("sqlstore: creating tenant: parent tenant: %w", store.ErrNotFound)
		}
	}
	return s.q.insert(ctx, "creating tenant", `INSERT INTO tenants (`+
		`id, parent_id, kind, name, slug, require_mfa, allowed_cidrs, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, nullString(t.ParentID), string(t.Kind), t.Name, t.Slug, boolInt(t.RequireMFA), cidrs,
		micros(t.CreatedAt), micros(t.UpdatedAt))
}

func (s tenantStore) Get(ctx context.Context, id string) (store.Tenant, error) {
	t, err := scanTenant(s.q.x.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1`, id))
	return t, mapErr("reading tenant", err)
}

func (s tenantStore) GetBySlug(ctx context.Context, slug string) (store.Tenant, error) {
	t, err := scanTenant(s.q.x.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE slug = $1`, slug))
	return t, mapErr("reading tenant by slug", err)
}

func (s tenantStore) ListChildren(ctx context.Context, parentID string, p store.Page) ([]store.Tenant, error) {
	after, limit := pageArgs(p)
	var rows *sql.Rows
	var err error
	if parentID == "" {
		rows, err = s.q.x.QueryContext(ctx, `SELECT `+tenantColumns+` FROM tenants
			WHERE parent_id IS NULL AND id > $1 ORDER BY id LIMIT $2`, after, limit)
	} else {
		rows, err = s.q.x.QueryContext(ctx, `SELECT `+tenantColumns+` FROM tenants
			WHERE parent_id = $1 AND id > $2 ORDER BY id LIMIT $3`, parentID, after, limit)
	}
	return collect(rows, err, "listing tenants", scanTenant)
}

func (s tenantStore) Update(ctx context.Context, t store.Tenant) error {
	cidrs, err := encodeStrings(t.AllowedCIDRs)
	if err != nil {
		return fmt.Errorf("sqlstore: encoding allowed CIDRs: %w", err)
	}
	return s.q.execOne(ctx, "updating tenant", `UPDATE tenants
		SET name = $2, require_mfa = $3, allowed_cidrs = $4, updated_at = $5 WHERE id = $1`,
		t.ID, t.Name, boolInt(t.RequireMFA), cidrs, micros(t.UpdatedAt))
}

// Delete refuses while child tenants or admins exist; the foreign keys
// would too, but an explicit check gives ErrConflict on both engines.
func (s tenantStore) Delete(ctx context.Context, id string) error {
	// Locked first: whatever creates a device, person or enrolment holds the
	// row in share mode (holdTenant), so it either commits before the check
	// below sees it or waits and then finds the tenant gone. Without this a
	// PostgreSQL enrolment racing the deletion could leave an orphan device.
	if err := s.q.lockTenant(ctx, "deleting tenant", id, s.q.db.dialect.forUpdate); err != nil {
		return err
	}
	n, err := s.q.count(ctx, "checking tenant dependants", `SELECT
		(SELECT COUNT(*) FROM tenants WHERE parent_id = $1) + (SELECT COUNT(*) FROM admins WHERE tenant_id = $1) +
		(SELECT COUNT(*) FROM devices WHERE tenant_id = $1 AND state IN ($2, $3, $4))`, id,
		store.DevicePending, store.DeviceEnrolled, store.DeviceLeaving)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("sqlstore: deleting tenant: it still has child tenants, admins or managed devices: %w", store.ErrConflict)
	}
	res, err := s.q.x.ExecContext(ctx, `DELETE FROM tenants WHERE id = $1`, id)
	if err != nil && isForeignKeyViolation(err) {
		// A dependant was added between the check and the delete.
		return fmt.Errorf("sqlstore: deleting tenant: %w", store.ErrConflict)
	}
	if err != nil {
		return mapErr("deleting tenant", err)
	}
	if affected, err := res.RowsAffected(); err != nil || affected == 0 {
		return mapErr("deleting tenant", sql.ErrNoRows)
	}
	return s.purge(ctx, id)
}

// DeleteAgain purges before deleting the row: what the backup brought back
// (admins, devices, their records) still refers to the tenant.
func (s tenantStore) DeleteAgain(ctx context.Context, id string) error {
	if err := s.q.lockTenant(ctx, "deleting tenant again", id, s.q.db.dialect.forUpdate); err != nil {
		return err
	}
	n, err := s.q.count(ctx, "checking customer tenants", `SELECT COUNT(*) FROM tenants WHERE parent_id = $1`, id)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("sqlstore: deleting tenant again: it still has customer tenants: %w", store.ErrConflict)
	}
	if err := s.purge(ctx, id); err != nil {
		return err
	}
	return s.q.execOne(ctx, "deleting tenant again", `DELETE FROM tenants WHERE id = $1`, id)
}

func (s tenantStore) PurgeLeftovers(ctx context.Context, id string) error {
	n, err := s.q.count(ctx, "checking tenant", `SELECT COUNT(*) FROM tenants WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("sqlstore: purging a deleted tenant's leftovers: the tenant exists: %w", store.ErrConflict)
	}
	return s.purge(ctx, id)
}

// keptWithoutTenant are the tenant-scoped tables a deleted tenant leaves
// behind: the record of what was done to a customer outlives the customer,
// for the audit log's retention period.
var keptWithoutTenant = map[string]bool{"audit_entries": true, "audit_heads": true, "audit_checkpoints": true}

// purge deletes the tenant's rows from every table with a tenant_id column,
// children before parents. Reading the tables from the schema, rather than
// listing them here, means a table added later cannot be forgotten.
func (s tenantStore) purge(ctx context.Context, id string) error {
	schema, err := s.q.db.loadSchema(ctx, s.q.x)
	if err != nil {
		return fmt.Errorf("sqlstore: deleting tenant: reading the schema: %w", err)
	}
	for _, table := range slices.Backward(schema.order) {
		if keptWithoutTenant[table] || !slices.Contains(schema.columns[table], "tenant_id") {
			continue
		}
		// The name comes from the database's own catalogue, not from input.
		if _, err := s.q.exec(ctx, "deleting tenant data", `DELETE FROM `+quoteIdent(table)+` WHERE tenant_id = $1`, id); err != nil {
			return fmt.Errorf("%w (table %s)", err, table)
		}
	}
	return nil
}

// holdTenant keeps tenant tenantID from being deleted until the transaction
// ends, and refuses with ErrNotFound if it is already gone.
func (q *queries) holdTenant(ctx context.Context, what, tenantID string) error {
	return q.lockTenant(ctx, what, tenantID, q.db.dialect.forShare)
}

func (q *queries) lockTenant(ctx context.Context, what, tenantID, lock string) error {
	if !q.inTx {
		lock = ""
	}
	var id string
	err := q.x.QueryRowContext(ctx, `SELECT id FROM tenants WHERE id = $1`+lock, tenantID).Scan(&id)
	return mapErr(what+": reading its tenant", err)
}

func (s tenantStore) Count(ctx context.Context) (int, error) {
	return s.q.count(ctx, "counting tenants", `SELECT COUNT(*) FROM tenants`)
}
