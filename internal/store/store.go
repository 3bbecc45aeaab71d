// Package store declares Steward's persistence contracts. Implementations
// (internal/store/sqlstore: SQLite and PostgreSQL) must pass the conformance
// suite in internal/store/storetest; a behaviour that differs between engines
// is a bug in one of them.
//
// Common contract for every method below:
//   - Every tenant-owned row is read and written with its tenant ID in the
//     WHERE clause; an ID that exists in another tenant is reported exactly like
//     an ID that does not exist: ErrNotFound.
//   - Errors are ErrNotFound, ErrConflict (unique or state violation) or an
//     opaque error for infrastructure failure. Callers use errors.Is.
//   - Times are stored with microsecond precision in UTC and come back in UTC.
//   - Lists are ordered by ID ascending unless stated; IDs are UUIDv7, so ID
//     order is creation order. Page.Limit <= 0 means the implementation's
//     default (100); it is capped at 1000.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
)

var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: conflict")
	// ErrInvalidText: a value holds text the database cannot keep (PostgreSQL
	// refuses NUL bytes and invalid UTF-8). The input was bad, not the store,
	// so it is the caller's error: every endpoint answers it with a 400.
	ErrInvalidText = apperr.Invalid("the request holds text with a NUL byte or invalid UTF-8")
)

// Store is a database.
type Store interface {
	// Engine is "sqlite" or "postgres".
	Engine() string
	// Read returns queries that run outside any transaction, for reads.
	Read() Queries
	// Tx runs fn in one transaction and commits when fn returns nil; otherwise
	// it rolls back and returns fn's error unchanged. A state change and the
	// audit entry recording it must be written in the same Tx. fn may be run
	// again if the engine reports a retryable conflict (serialisation failure
	// or deadlock), so it must not have side effects outside q.
	Tx(ctx context.Context, fn func(q Queries) error) error
	// Ping checks the database answers.
	Ping(ctx context.Context) error
	// Migrate applies pending embedded migrations and returns how many ran.
	Migrate(ctx context.Context) (int, error)
	// MigrationStatus reports the applied and the latest known version.
	MigrationStatus(ctx context.Context) (applied, latest int, err error)
	Close() error
}

// Queries groups the per-aggregate stores. Within Tx they share the
// transaction; from Read they use the pool.
type Queries interface {
	Tenants() TenantStore
	Admins() AdminStore
	Roles() RoleStore
	Assignments() AssignmentStore
	Sessions() SessionStore
	Tokens() TokenStore
	Audit() AuditStore
	Settings() SettingStore
	Leases() LeaseStore

	Subjects() SubjectStore
	Devices() DeviceStore
	Inventory() InventoryStore
	Keys() KeyStore
	Tombstones() TombstoneStore
	PrivacySettings() PrivacySettingsStore
	Approvals() ApprovalStore
	Notices() NoticeStore
	Consents() ConsentStore
	Access() AccessStore
	Reveals() RevealStore
	Erasures() ErasureStore
	Notifications() NotificationStore
	PortalTokens() PortalTokenStore
	SubjectData() SubjectDataStore

	Enrolments() EnrolmentStore
	AppleChannels() AppleChannelStore
	AppleUserChannels() AppleUserChannelStore
	Commands() CommandStore

	ManagedDevices() ManagedDeviceStore
	Groups() GroupStore
	Profiles() ProfileStore
	DeviceProfiles() DeviceProfileStore
	Compliance() ComplianceStore
	Actions() ActionStore
	DepartedPINs() DepartedPINStore
	Apps() AppStore
	Reports() ReportStore

	// Sealed re-seals the columns of secrets sealed under the master key.
	Sealed() SealedStore

	// BeforeCommit runs fn as the transaction's last work: after the
	// function given to Tx returned nil and before COMMIT, and its error
	// fails the transaction. Outside a transaction fn runs at once. Audit
	// appends use it, so the chain head they lock is held only through
	// the commit.
	BeforeCommit(fn func(Queries) error) error
	// BeforeCommitGathered is BeforeCommit for work that is best done in
	// one pass: the first call with key defers fn, later calls with key
	// only add their item, and fn gets every item in call order. A call
	// after fn ran starts a new gathering. Outside a transaction fn runs
	// at once with the one item. Audit appends use it, so a transaction
	// locks the chain heads of all its tenants in one sorted order.
	BeforeCommitGathered(key, item any, fn func(q Queries, items []any) error) error
}

// TenantStore holds tenants. Tenants are the one aggregate listed without a
// tenant filter: callers restrict the list to what the actor may see.
type TenantStore interface {
	// Create inserts t; ErrConflict when the slug is taken. ParentID, when
	// set, must name an existing tenant (ErrNotFound otherwise).
	Create(ctx context.Context, t Tenant) error
	Get(ctx context.Context, id string) (Tenant, error)
	GetBySlug(ctx context.Context, slug string) (Tenant, error)
	// List returns tenants whose ParentID is parentID ("" lists roots).
	ListChildren(ctx context.Context, parentID string, p Page) ([]Tenant, error)
	// Update writes Name, RequireMFA, AllowedCIDRs and UpdatedAt.
	Update(ctx context.Context, t Tenant) error
	// Delete removes a tenant with everything it holds except its audit log,
	// which is kept for its retention period. Its key vault goes with it, so
	// every copy of its encrypted data, backups included, becomes unreadable.
	// ErrConflict while it has child tenants, admins, or devices still under
	// management (pending or enrolled).
	Delete(ctx context.Context, id string) error
	// DeleteAgain removes a tenant whose deletion a restored backup undid,
	// with whatever the backup brought back of it: admins and devices it
	// no longer had when it was deleted. Its audit log stays, as with
	// Delete. ErrConflict while it has child tenants.
	DeleteAgain(ctx context.Context, id string) error
	// PurgeLeftovers removes what deleted tenant id still has in its
	// tables (its audit log excepted): rows a request racing its deletion
	// wrote. ErrConflict while the tenant exists.
	PurgeLeftovers(ctx context.Context, id string) error
	Count(ctx context.Context) (int, error)
}

// AdminStore holds admin accounts, their password history and recovery codes.
type AdminStore interface {
	// Create inserts a; ErrConflict when the email is taken anywhere.
	Create(ctx context.Context, a Admin) error
	// Get returns the admin whose home tenant is tenantID.
	Get(ctx context.Context, tenantID, id string) (Admin, error)
	// GetByID ignores the tenant; for authentication paths only, where the
	// session or login itself names the admin.
	GetByID(ctx context.Context, id string) (Admin, error)
	// GetByEmail matches the lower-cased email; for login only.
	GetByEmail(ctx context.Context, email string) (Admin, error)
	List(ctx context.Context, tenantID string, p Page) ([]Admin, error)
	// Update writes every mutable field of a (matched by TenantID and ID)
	// but MFASecret, which a caller may have read before a master-key
	// rotation re-sealed it (SetMFASecret; SealedAdminMFASecrets).
	Update(ctx context.Context, a Admin) error
	// SetMFASecret sets or, with nil, clears the admin's sealed TOTP secret.
	SetMFASecret(ctx context.Context, tenantID, id string, sealed []byte) error
	// Delete removes the admin with their sessions, assignments, history and
	// recovery codes.
	Delete(ctx context.Context, tenantID, id string) error
	Count(ctx context.Context) (int, error)
	// AddPasswordHistory records a hash the admin has used.
	AddPasswordHistory(ctx context.Context, adminID, hash string, at time.Time) error
	// RecentPasswordHashes returns up to n hashes, newest first.
	RecentPasswordHashes(ctx context.Context, adminID string, n int) ([]string, error)
	// ReplaceRecoveryCodes deletes the admin's codes and stores these hashes.
	ReplaceRecoveryCodes(ctx context.Context, adminID string, hashes [][]byte) error
	// ConsumeRecoveryCode deletes the code with this hash and reports whether
	// it existed; a code can be consumed once, even under concurrency.
	ConsumeRecoveryCode(ctx context.Context, adminID string, hash []byte) (bool, error)
	// CountRecoveryCodes returns how many unused codes remain.
	CountRecoveryCodes(ctx context.Context, adminID string) (int, error)
}

// RoleStore holds custom roles; built-in roles live in code (internal/rbac).
type RoleStore interface {
	// Create inserts r; ErrConflict when the tenant already has that name.
	Create(ctx context.Context, r Role) error
	Get(ctx context.Context, tenantID, id string) (Role, error)
	List(ctx context.Context, tenantID string) ([]Role, error)
	// Update writes Name, Description and Permissions.
	Update(ctx context.Context, r Role) error
	// Delete removes the role; ErrConflict while assignments use it.
	Delete(ctx context.Context, tenantID, id string) error
}

// AssignmentStore holds role assignments.
type AssignmentStore interface {
	// Create inserts a with its group scope; ErrConflict when the same
	// admin/tenant/role exists, ErrNotFound when a scope group is not a
	// group of a.TenantID. Every read fills Groups.
	Create(ctx context.Context, a Assignment) error
	Get(ctx context.Context, tenantID, id string) (Assignment, error)
	Delete(ctx context.Context, tenantID, id string) error
	// ListForAdmin returns every assignment of one admin, in any tenant.
	ListForAdmin(ctx context.Context, adminID string) ([]Assignment, error)
	ListForTenant(ctx context.Context, tenantID string, p Page) ([]Assignment, error)
	// CountForRole counts assignments of roleID on tenantID.
	CountForRole(ctx context.Context, tenantID, roleID string) (int, error)
}

// SessionStore holds admin sessions.
type SessionStore interface {
	Create(ctx context.Context, s Session) error
	// GetBySecretHash returns the session, revoked or expired ones included;
	// the caller checks validity.
	GetBySecretHash(ctx context.Context, hash []byte) (Session, error)
	// Touch moves LastSeenAt and IdleExpiry forward.
	Touch(ctx context.Context, id string, lastSeen, idleExpiry time.Time) error
	// Update writes MFAVerified, CSRFHash, IdleExpiry and AbsExpiry.
	Update(ctx context.Context, s Session) error
	ListForAdmin(ctx context.Context, adminID string) ([]Session, error)
	// Revoke marks one of the admin's sessions revoked; ErrNotFound if the
	// session is not the admin's.
	Revoke(ctx context.Context, adminID, id string, at time.Time) error
	// Consume revokes a live session of the admin in order to replace it
	// (after a second factor). ErrConflict when it is already revoked, also
	// under concurrency: of two requests racing on one session, one wins.
	Consume(ctx context.Context, adminID, id string, at time.Time) error
	// RevokeAllForAdmin revokes every live session but exceptID; returns how many.
	RevokeAllForAdmin(ctx context.Context, adminID, exceptID string, at time.Time) (int, error)
	// DeleteExpired removes sessions whose absolute expiry or revocation is
	// before cutoff; returns how many.
	DeleteExpired(ctx context.Context, cutoff time.Time) (int, error)
}

// TokenStore holds API tokens.
type TokenStore interface {
	Create(ctx context.Context, t APIToken) error
	GetBySecretHash(ctx context.Context, hash []byte) (APIToken, error)
	Get(ctx context.Context, tenantID, id string) (APIToken, error)
	List(ctx context.Context, tenantID string, p Page) ([]APIToken, error)
	Revoke(ctx context.Context, tenantID, id string, at time.Time) error
	// TouchUsed records the last use; cheap enough for every request.
	TouchUsed(ctx context.Context, id string, at time.Time, ip string) error
}

// AuditStore persists hash-chained audit entries. It stores what it is given:
// the chain arithmetic lives in internal/audit.
type AuditStore interface {
	// Head returns the tenant's chain head, zero-valued when the tenant has no
	// entries. Inside Tx it locks the head until commit (FOR UPDATE on
	// PostgreSQL; SQLite write transactions are already exclusive).
	Head(ctx context.Context, tenantID string) (AuditHead, error)
	// Append inserts entries (one tenant, consecutive Seq) and stores head.
	// ErrConflict when a Seq already exists.
	Append(ctx context.Context, head AuditHead, entries []AuditEntry) error
	// List returns entries matching f, by Seq ascending (or descending when
	// f.Descending).
	List(ctx context.Context, tenantID string, f AuditFilter) ([]AuditEntry, error)
	// Scan calls fn for each entry with Seq > afterSeq in Seq order, streaming;
	// it stops at fn's first error and returns it.
	Scan(ctx context.Context, tenantID string, afterSeq int64, fn func(AuditEntry) error) error
	// Tenants lists the IDs of tenants that have a chain head.
	Tenants(ctx context.Context) ([]string, error)
	AddCheckpoint(ctx context.Context, c Checkpoint) error
	// Checkpoints returns the tenant's checkpoints by Seq ascending.
	Checkpoints(ctx context.Context, tenantID string) ([]Checkpoint, error)
	// LastSeqBefore returns the highest Seq whose Time is before t (0 if none).
	LastSeqBefore(ctx context.Context, tenantID string, t time.Time) (int64, error)
	// DeleteThrough removes entries with Seq <= seq and checkpoints below the
	// new base, and stores head (whose Base fields the caller has moved).
	DeleteThrough(ctx context.Context, head AuditHead, seq int64) (int, error)
}

// SettingStore is a small key/value table for server-wide state (sealed
// keys, bootstrap codes). Values are opaque bytes.
type SettingStore interface {
	// Get returns ErrNotFound when the key is absent.
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
	// PutIfAbsent stores value only when key is absent and reports whether it
	// did; used where several nodes race to create the same thing.
	PutIfAbsent(ctx context.Context, key string, value []byte) (bool, error)
	// Swap stores value only while key still holds old, and reports
	// whether it did; a concurrent write wins.
	Swap(ctx context.Context, key string, old, value []byte) (bool, error)
	Delete(ctx context.Context, key string) error
	// DeletePrefix removes every key starting with prefix and says how many.
	DeletePrefix(ctx context.Context, prefix string) (int, error)
	// ListPrefix returns up to limit settings whose key starts with prefix,
	// in key order, after the key after ("" starts at the first).
	ListPrefix(ctx context.Context, prefix, after string, limit int) ([]Setting, error)
}

// Setting is one stored key and its value.
type Setting struct {
	Key   string
	Value []byte
}

// LeaseStore elects one node for periodic work (checkpoints, archiving).
type LeaseStore interface {
	// TryAcquire takes or renews the named lease for holder until now+ttl and
	// reports whether holder has it. A lease held by another holder that has
	// not expired is not taken.
	TryAcquire(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	Release(ctx context.Context, name, holder string) error
}
