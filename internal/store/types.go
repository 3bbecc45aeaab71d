package store

import (
	"encoding/json"
	"time"
)

// TenantKind tells a provider (an MSP, or the single organisation of a
// self-hosted install) from the customer tenants it manages.
type TenantKind string

const (
	TenantProvider TenantKind = "provider"
	TenantCustomer TenantKind = "customer"
)

// Tenant is an organisation. Every other row carries a tenant ID.
type Tenant struct {
	ID       string
	ParentID string // empty for the root provider
	Kind     TenantKind
	Name     string
	Slug     string // unique, URL-safe
	// RequireMFA makes a second factor mandatory for every admin whose home
	// tenant this is, on every kind of login (console and CLI).
	RequireMFA bool
	// AllowedCIDRs restricts logins and requests for this tenant; empty means
	// no restriction.
	AllowedCIDRs []string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Admin is a person who administers one or more tenants. Their home tenant
// owns the account; role assignments give access to tenants.
type Admin struct {
	ID           string
	TenantID     string // home tenant
	Email        string // stored lower-case; unique across the install
	DisplayName  string
	PasswordHash string // PHC string, argon2id
	// MFASecret is the TOTP secret sealed with the server's secret key; nil
	// until MFA is confirmed.
	MFASecret  []byte
	MFAEnabled bool
	// MFALastStep is the last TOTP time step accepted, so a code cannot be
	// replayed within its window.
	MFALastStep   int64
	Disabled      bool
	FailedLogins  int
	LastFailureAt time.Time
	LockedUntil   time.Time
	PasswordSetAt time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Role is a named set of permissions. Built-in roles have an empty TenantID
// and cannot be changed; custom roles belong to one tenant.
type Role struct {
	ID          string
	TenantID    string
	Name        string
	Description string
	Permissions []string
	BuiltIn     bool
	CreatedAt   time.Time
}

// Assignment grants an admin a role on a tenant and the customer tenants
// beneath it.
type Assignment struct {
	ID       string
	AdminID  string
	TenantID string
	RoleID   string
	// Groups limits the role to devices in these groups of TenantID (and
	// to the device-related permissions); empty means the whole tenant.
	Groups    []string
	CreatedAt time.Time
}

// SessionKind separates browser sessions (cookie + CSRF) from CLI sessions
// (bearer).
type SessionKind string

const (
	SessionBrowser SessionKind = "browser"
	SessionCLI     SessionKind = "cli"
)

// Session is a logged-in admin. Only the SHA-256 of the bearer secret is
// stored.
type Session struct {
	ID          string
	AdminID     string
	TenantID    string // the admin's home tenant, for the allowlist
	Kind        SessionKind
	SecretHash  []byte
	CSRFHash    []byte // browser sessions only
	MFAVerified bool
	SourceIP    string
	UserAgent   string
	CreatedAt   time.Time
	LastSeenAt  time.Time
	IdleExpiry  time.Time
	AbsExpiry   time.Time
	RevokedAt   time.Time
}

// APIToken is a long-lived credential scoped to one tenant and one role.
type APIToken struct {
	ID         string
	TenantID   string
	RoleID     string
	Name       string
	CreatedBy  string // admin ID
	SecretHash []byte
	ExpiresAt  time.Time
	LastUsedAt time.Time
	LastUsedIP string
	RevokedAt  time.Time
	CreatedAt  time.Time
}

// ActorType names who did something recorded in the audit log.
type ActorType string

const (
	ActorAdmin     ActorType = "admin"
	ActorToken     ActorType = "token"
	ActorDevice    ActorType = "device"
	ActorSystem    ActorType = "system"
	ActorAnonymous ActorType = "anonymous"
	// ActorSubject is an employee acting on their own data (portal).
	ActorSubject ActorType = "subject"
)

// AuditEntry is one link of a tenant's hash chain. Seq starts at 1 and has no
// gaps; Hash covers the canonical encoding of every other field and PrevHash.
type AuditEntry struct {
	TenantID   string
	Seq        int64
	Time       time.Time // UTC, microsecond precision
	ActorType  ActorType
	ActorID    string
	Action     string // dotted verb, e.g. "admin.create"
	TargetType string
	TargetID   string
	Outcome    string // "success", "failure", "denied"
	SourceIP   string
	RequestID  string
	Reason     string
	Details    json.RawMessage // compact JSON object, or nil
	PrevHash   []byte
	Hash       []byte
}

// AuditHead is where a tenant's chain currently ends, and where its oldest
// remaining entry starts once older entries have been archived.
type AuditHead struct {
	TenantID string
	Seq      int64
	Hash     []byte
	// BaseSeq/BaseHash: the last archived entry. The first live entry has
	// Seq == BaseSeq+1 and PrevHash == BaseHash. Zero before any archive.
	BaseSeq  int64
	BaseHash []byte
}

// Checkpoint is a signed statement that a tenant's chain had Hash at Seq.
type Checkpoint struct {
	TenantID  string
	Seq       int64
	Hash      []byte
	Time      time.Time
	KeyID     string // hex of the first 8 bytes of SHA-256 of the public key
	Signature []byte
}

// AuditFilter selects audit entries. Zero fields do not filter.
type AuditFilter struct {
	ActorType  ActorType
	ActorID    string
	Action     string // exact, or prefix when it ends in "*"
	TargetType string
	TargetID   string
	Since      time.Time // inclusive
	Until      time.Time // exclusive
	AfterSeq   int64     // cursor: entries with Seq > AfterSeq
	BeforeSeq  int64     // cursor for newest-first listing: Seq < BeforeSeq
	Descending bool
	Limit      int
}

// Page asks for a slice of a list ordered by ID (IDs are time-ordered).
type Page struct {
	After string
	Limit int
}
