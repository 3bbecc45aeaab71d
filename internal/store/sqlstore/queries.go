package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"

	"github.com/steward-mdm/steward/internal/store"
)

// execer is what *sql.DB and *sql.Tx have in common.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queries implements store.Queries over a pool (Read) or a transaction.
type queries struct {
	db   *DB
	x    execer
	inTx bool
	// beforeCommit holds what BeforeCommit deferred in this transaction.
	beforeCommit []func(store.Queries) error
	// gathering holds the items of BeforeCommitGathered calls whose
	// deferred function has not run yet, by key.
	gathering map[any]*[]any
}

func (q *queries) BeforeCommit(fn func(store.Queries) error) error {
	if !q.inTx {
		return fn(q)
	}
	q.beforeCommit = append(q.beforeCommit, fn)
	return nil
}

func (q *queries) BeforeCommitGathered(key, item any, fn func(store.Queries, []any) error) error {
	if !q.inTx {
		return fn(q, []any{item})
	}
	if items, ok := q.gathering[key]; ok {
		*items = append(*items, item)
		return nil
	}
	items := &[]any{item}
	if q.gathering == nil {
		q.gathering = map[any]*[]any{}
	}
	q.gathering[key] = items
	q.beforeCommit = append(q.beforeCommit, func(store.Queries) error {
		delete(q.gathering, key)
		return fn(q, *items)
	})
	return nil
}

// runBeforeCommit runs the deferred functions in order, including any they
// defer themselves, and forgets them.
func (q *queries) runBeforeCommit() error {
	for len(q.beforeCommit) > 0 {
		fn := q.beforeCommit[0]
		q.beforeCommit = q.beforeCommit[1:]
		if err := fn(q); err != nil {
			q.beforeCommit, q.gathering = nil, nil
			return err
		}
	}
	return nil
}

// runTx runs a transaction's function, then what it deferred to its end.
func (q *queries) runTx(fn func(store.Queries) error) error {
	q.beforeCommit, q.gathering = nil, nil
	if err := fn(q); err != nil {
		q.beforeCommit, q.gathering = nil, nil
		return err
	}
	return q.runBeforeCommit()
}

func (q *queries) Tenants() store.TenantStore         { return tenantStore{q} }
func (q *queries) Admins() store.AdminStore           { return adminStore{q} }
func (q *queries) Roles() store.RoleStore             { return roleStore{q} }
func (q *queries) Assignments() store.AssignmentStore { return assignmentStore{q} }
func (q *queries) Sessions() store.SessionStore       { return sessionStore{q} }
func (q *queries) Tokens() store.TokenStore           { return tokenStore{q} }
func (q *queries) Audit() store.AuditStore            { return auditStore{q} }
func (q *queries) Settings() store.SettingStore       { return settingStore{q} }
func (q *queries) Leases() store.LeaseStore           { return leaseStore{q} }

func (q *queries) Enrolments() store.EnrolmentStore               { return enrolmentStore{q} }
func (q *queries) AppleChannels() store.AppleChannelStore         { return appleChannelStore{q} }
func (q *queries) AppleUserChannels() store.AppleUserChannelStore { return appleUserChannelStore{q} }
func (q *queries) Commands() store.CommandStore                   { return commandStore{q} }
func (q *queries) Subjects() store.SubjectStore                   { return subjectStore{q} }
func (q *queries) Devices() store.DeviceStore                     { return deviceStore{q} }
func (q *queries) Inventory() store.InventoryStore                { return inventoryStore{q} }
func (q *queries) Keys() store.KeyStore                           { return keyStore{q} }
func (q *queries) Tombstones() store.TombstoneStore               { return tombstoneStore{q} }
func (q *queries) PrivacySettings() store.PrivacySettingsStore    { return privacySettingsStore{q} }
func (q *queries) Approvals() store.ApprovalStore                 { return approvalStore{q} }
func (q *queries) Notices() store.NoticeStore                     { return noticeStore{q} }
func (q *queries) Consents() store.ConsentStore                   { return consentStore{q} }
func (q *queries) Access() store.AccessStore                      { return accessStore{q} }
func (q *queries) Reveals() store.RevealStore                     { return revealStore{q} }
func (q *queries) Erasures() store.ErasureStore                   { return erasureStore{q} }
func (q *queries) Notifications() store.NotificationStore         { return notificationStore{q} }
func (q *queries) PortalTokens() store.PortalTokenStore           { return portalTokenStore{q} }
func (q *queries) SubjectData() store.SubjectDataStore            { return subjectDataStore{q} }

func (q *queries) ManagedDevices() store.ManagedDeviceStore { return managedDeviceStore{q} }
func (q *queries) Groups() store.GroupStore                 { return groupStore{q} }
func (q *queries) Profiles() store.ProfileStore             { return profileStore{q} }
func (q *queries) DeviceProfiles() store.DeviceProfileStore { return deviceProfileStore{q} }
func (q *queries) Compliance() store.ComplianceStore        { return complianceStore{q} }
func (q *queries) Actions() store.ActionStore               { return actionStore{q} }
func (q *queries) DepartedPINs() store.DepartedPINStore     { return departedPINStore{q} }
func (q *queries) Apps() store.AppStore                     { return appStore{q} }
func (q *queries) Reports() store.ReportStore               { return reportStore{q} }
func (q *queries) Sealed() store.SealedStore                { return sealedStore{q} }

// exec runs a statement and returns rows affected, mapping errors.
func (q *queries) exec(ctx context.Context, what, query string, args ...any) (int, error) {
	res, err := q.x.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, mapErr(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	return int(n), nil
}

// execOne runs a statement that must touch exactly one row; none means the
// row is absent or belongs to another tenant: ErrNotFound.
func (q *queries) execOne(ctx context.Context, what, query string, args ...any) error {
	n, err := q.exec(ctx, what, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: %w", what, store.ErrNotFound)
	}
	return nil
}

func (q *queries) count(ctx context.Context, what, query string, args ...any) (int, error) {
	var n int
	if err := q.x.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, mapErr(what, err)
	}
	return n, nil
}

// mapErr translates driver errors into the store's sentinel errors while
// keeping the original for diagnosis.
func mapErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: %s: %w", what, store.ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("sqlstore: %s: %w (%v)", what, store.ErrConflict, err)
	case isInvalidText(err):
		return fmt.Errorf("sqlstore: %s: %w (%v)", what, store.ErrInvalidText, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", what, err)
}

// isInvalidText: PostgreSQL refused a NUL byte or invalid UTF-8 in a
// parameter (character_not_in_repertoire, untranslatable_character).
// SQLite stores such text as given.
func isInvalidText(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "22021" || pgErr.Code == "22P05")
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case 2067, 1555: // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
			return true
		}
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503"
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) && liteErr.Code() == 787 { // SQLITE_CONSTRAINT_FOREIGNKEY
		return true
	}
	return strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

// pageArgs returns the cursor and the effective limit of p.
func pageArgs(p store.Page) (string, int) {
	n := p.Limit
	if n <= 0 {
		n = 100
	}
	return p.After, min(n, 1000)
}

// micros stores a time as unix microseconds UTC; the zero time is 0.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func nowMicros() int64 { return time.Now().UnixMicro() }

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// blob stores empty byte strings as NULL so they read back as nil on both engines.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func encodeStrings(s []string) (string, error) {
	if s == nil {
		s = []string{}
	}
	b, err := json.Marshal(s)
	return string(b), err
}

func decodeStrings(s string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("sqlstore: decoding string list: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanAlso lets a row's scan function read its columns while the caller
// reads the columns selected after them.
type scanAlso struct {
	s     scanner
	extra []any
}

func (a scanAlso) Scan(dest ...any) error { return a.s.Scan(append(dest, a.extra...)...) }

// scanFunc adapts a function to scanner.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// qualified prefixes each of a comma-separated column list with table.
func qualified(table, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = table + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, err error, what string, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, mapErr(what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, mapErr(what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(what, err)
	}
	return out, nil
}

// insert runs an INSERT with ON CONFLICT DO NOTHING appended: a unique clash
// then reports ErrConflict without aborting a PostgreSQL transaction, so the
// caller's transaction stays usable on both engines alike. A missing
// referenced row (foreign key) is ErrNotFound.
func (q *queries) insert(ctx context.Context, what, query string, args ...any) error {
	res, err := q.x.ExecContext(ctx, query+" ON CONFLICT DO NOTHING", args...)
	if err != nil {
		if isForeignKeyViolation(err) {
			return fmt.Errorf("sqlstore: %s: a referenced row is missing: %w", what, store.ErrNotFound)
		}
		return mapErr(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: %w", what, store.ErrConflict)
	}
	return nil
}
