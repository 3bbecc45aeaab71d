package store

import (
	"context"
	"time"
)

// The privacy-core aggregates. Personal values arrive here already encrypted
// by the privacy gate; these stores never see plaintext personal data.

// SubjectState is the lifecycle of a data subject.
type SubjectState string

const (
	SubjectActive SubjectState = "active"
	SubjectErased SubjectState = "erased"
)

// Subject is a person whose data Steward holds (an employee). After erasure
// only ID, Pseudonym and the erasure time remain.
type Subject struct {
	ID         string
	TenantID   string
	Pseudonym  string // e.g. "person-3f9a1c": what audit entries show
	EmailIndex []byte // keyed blind index of the normalised e-mail
	// AppleIDIndex is the same index of the person's Managed Apple
	// Account, when it is not their e-mail. No two people of a tenant share
	// an account name, as an e-mail or as an account.
	AppleIDIndex []byte
	Profile      []byte // ciphertext of the person's profile under their data key
	KeyID        string
	Locale       string
	State        SubjectState
	CreatedAt    time.Time
	UpdatedAt    time.Time
	ErasedAt     time.Time
}

// SubjectStore holds data subjects.
type SubjectStore interface {
	// Create inserts s; ErrConflict when its e-mail or Apple account index
	// is another person's, as either,
	// ErrNotFound when its tenant is gone. The tenant cannot be deleted
	// until the transaction ends.
	Create(ctx context.Context, s Subject) error
	Get(ctx context.Context, tenantID, id string) (Subject, error)
	GetByEmailIndex(ctx context.Context, tenantID string, index []byte) (Subject, error)
	// GetByAccountIndex finds the person whose e-mail or Managed Apple
	// Account has index (a name is one person's, as either).
	GetByAccountIndex(ctx context.Context, tenantID string, index []byte) (Subject, error)
	// Lock is Get that, inside Tx, holds the row until commit (FOR UPDATE on
	// PostgreSQL), so concurrent erasures and writes serialise.
	Lock(ctx context.Context, tenantID, id string) (Subject, error)
	List(ctx context.Context, tenantID string, p Page) ([]Subject, error)
	// Update writes EmailIndex, AppleIDIndex, Profile, KeyID, Locale,
	// State, UpdatedAt and ErasedAt; ErrConflict as for Create.
	Update(ctx context.Context, s Subject) error
	// MarkUnmanaged records that the person's last device left management
	// at since; ErrNotFound when the tenant has no such person.
	MarkUnmanaged(ctx context.Context, tenantID, id string, since time.Time) error
	// Unmanaged returns up to limit active people, of every tenant, by ID
	// after afterID, marked unmanaged before cutoff who have no device on
	// record that has not left (deprovisioned, retired or wiped) and no
	// enrolment link still open or accepted and unexpired at now.
	Unmanaged(ctx context.Context, cutoff, now time.Time, afterID string, limit int) ([]Subject, error)
	// IsUnmanaged is Unmanaged for one person.
	IsUnmanaged(ctx context.Context, tenantID, id string, cutoff, now time.Time) (bool, error)
}

// Device states.
const (
	DevicePending  = "pending"
	DeviceEnrolled = "enrolled"
	// DeviceLeaving: its personal data is erased (the employee withdrew
	// consent) and it has been told to remove its management profile; it
	// stays reachable only to receive that removal, and ends retired.
	DeviceLeaving       = "leaving"
	DeviceRetired       = "retired"
	DeviceWiped         = "wiped"
	DeviceDeprovisioned = "deprovisioned"
)

// Device is a managed device. Its identifying values live in the inventory
// (encrypted); only keyed blind indexes of serial and UDID are here.
type Device struct {
	ID              string
	TenantID        string
	SubjectID       string // "" when no person is assigned
	Ownership       string
	Platform        string
	State           string
	SerialIndex     []byte
	UDIDIndex       []byte
	KeyID           string
	EnrolledAt      time.Time
	LastSeenAt      time.Time
	DeprovisionedAt time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
	// The management projection (read-only here; see ManagedDeviceStore).
	OSVersion    string
	Model        string
	Compliance   string // ComplianceUnknown until a policy evaluated it
	ComplianceAt time.Time
	StaleSince   time.Time // when it was flagged stale; zero when not
}

// Gone reports whether the device has left management or is leaving it:
// its personal data went, nothing it reports is kept, and it counts for
// nothing (consents, groups, compliance) any more.
func (d Device) Gone() bool {
	return d.Left() || d.State == DeviceLeaving
}

// Left reports whether the device has left management for good: retired
// (selective wipe), wiped, or deprovisioned (deleted). Nothing it sends is
// accepted any more. A leaving device has not left yet.
func (d Device) Left() bool {
	return d.State == DeviceDeprovisioned || d.State == DeviceRetired || d.State == DeviceWiped
}

// DeviceFilter narrows a device list.
type DeviceFilter struct {
	SubjectID   string
	SerialIndex []byte
	Page        Page
}

// DeviceStore holds devices.
type DeviceStore interface {
	// Create inserts d; ErrNotFound when its tenant is gone. The tenant
	// cannot be deleted until the transaction ends.
	Create(ctx context.Context, d Device) error
	Get(ctx context.Context, tenantID, id string) (Device, error)
	// GetMany returns the tenant's devices among ids, keyed by ID; unknown
	// IDs are absent. Bulk operations read thousands at once with it.
	GetMany(ctx context.Context, tenantID string, ids []string) (map[string]Device, error)
	// Lock is Get that, inside Tx, holds the row until commit: the gate and
	// deprovisioning serialise on it.
	Lock(ctx context.Context, tenantID, id string) (Device, error)
	List(ctx context.Context, tenantID string, f DeviceFilter) ([]Device, error)
	// Update writes every mutable field of d.
	Update(ctx context.Context, d Device) error
	// Touch records a check-in and clears the device's stale flag.
	Touch(ctx context.Context, tenantID, id string, at time.Time) error
	// ClearIdentifierIndexes removes the serial-number and UDID blind
	// indexes of the tenant's devices of ownership, so that no search finds
	// them by those any more, and returns how many devices had one.
	ClearIdentifierIndexes(ctx context.Context, tenantID, ownership string) (int, error)
	// PurgeDeprovisioned deletes up to limit rows of the devices
	// deprovisioned before before (their personal data went at
	// deprovisioning), oldest departure first: first the rows that belong
	// to a device (its MDM channels, command queue, enrolments, group
	// memberships, profile and compliance states, compliance history and
	// remote actions), then the device itself once none is left, so a
	// device with more rows than limit goes over several calls and no row
	// outlives its device. Every row deleted is counted, the devices under
	// "deprovisioned_devices" and their rows under a category per table
	// ("deprovisioned_device_commands", …); none means nothing is left.
	PurgeDeprovisioned(ctx context.Context, before time.Time, limit int) ([]PurgeCount, error)
}

// InventoryValue is one stored catalogue field of a device. Exactly one of
// Value (non-personal, plaintext JSON) and Ciphertext (personal) is set.
type InventoryValue struct {
	ID          string // history rows only
	TenantID    string
	DeviceID    string
	Field       string
	Category    string
	SubjectID   string
	Hidden      bool
	Value       []byte
	Ciphertext  []byte
	KeyID       string
	Digest      []byte // keyed digest of the plaintext, to detect change without decrypting
	CollectedAt time.Time
	ExpiresAt   time.Time // zero: kept while the device is enrolled
}

// PurgeCount is how many rows of a tenant's category a purge removed.
type PurgeCount struct {
	TenantID string
	Category string
	Rows     int
}

// InventoryPurge is what one InventoryStore.PurgeExpired batch removed.
type InventoryPurge struct {
	Counts []PurgeCount
	// Devices lists by tenant, in ID order, the devices that lost a current
	// value (history rows alone do not count): what was derived from their
	// current values must be rebuilt.
	Devices map[string][]string
}

// InventoryStore holds current values and their history.
type InventoryStore interface {
	// Current returns the device's current values by field.
	Current(ctx context.Context, tenantID, deviceID string) ([]InventoryValue, error)
	// CurrentOf returns the device's current values of the named fields
	// (at most 500), by field.
	CurrentOf(ctx context.Context, tenantID, deviceID string, fields []string) ([]InventoryValue, error)
	// FieldValues returns a page of the tenant's current values of one
	// field, one per device, by device ID after afterDeviceID.
	FieldValues(ctx context.Context, tenantID, field, afterDeviceID string, limit int) ([]InventoryValue, error)
	// HiddenOf returns the IDs among deviceIDs whose current value of field
	// was stored hidden (InventoryValue.Hidden), in one read per 500 IDs.
	HiddenOf(ctx context.Context, tenantID, field string, deviceIDs []string) (map[string]bool, error)
	// Put upserts current values and appends history rows (superseded values).
	Put(ctx context.Context, current, history []InventoryValue) error
	// Refresh moves the collection and expiry times of the device's current
	// values of fields, for values reported again unchanged.
	Refresh(ctx context.Context, tenantID, deviceID string, fields []string, collectedAt, expiresAt time.Time) error
	// History returns the device's superseded values, newest first.
	History(ctx context.Context, tenantID, deviceID string, limit int) ([]InventoryValue, error)
	// ForSubject returns current and historical values stamped with subjectID.
	ForSubject(ctx context.Context, tenantID, subjectID string) ([]InventoryValue, error)
	// DeleteDevice removes every value and history row of the device.
	DeleteDevice(ctx context.Context, tenantID, deviceID string) (int, error)
	// DeleteCategory removes values of category on devices of ownership.
	DeleteCategory(ctx context.Context, tenantID, ownership, category string) (int, error)
	// HideCategory marks the values of category on devices of ownership,
	// current and historical, hidden (InventoryValue.Hidden), and returns
	// how many rows were not hidden yet.
	HideCategory(ctx context.Context, tenantID, ownership, category string) (int, error)
	// ShortenRetention makes the tenant's values and history of category
	// expire retention after they were collected, where that is sooner
	// than now; it never extends an expiry.
	ShortenRetention(ctx context.Context, tenantID, category string, retention time.Duration) error
	// DeleteByKey removes values encrypted under a data key (used when a
	// restored backup holds values whose key the vault destroyed).
	DeleteByKey(ctx context.Context, tenantID, keyID string) (int, error)
	// PurgeExpired deletes up to limit rows whose expiry is at or before now,
	// from current values and history, and says what it removed.
	PurgeExpired(ctx context.Context, now time.Time, limit int) (InventoryPurge, error)
}

// TenantKeyset is a tenant's key-encryption keyset and blind-index keyset,
// both encrypted under the master key.
type TenantKeyset struct {
	TenantID    string
	AEADKeyset  []byte
	IndexKeyset []byte
	MasterKeyID string
	CreatedAt   time.Time
	RotatedAt   time.Time
}

// DataKey is a per-owner (a person or a device) data key, wrapped by the
// tenant keyset. Destroyed keys keep their row, without key material, so
// Steward can say the data was erased rather than lost.
type DataKey struct {
	ID          string
	TenantID    string
	Owner       string // "subject:<id>" or "device:<id>"
	SubjectID   string
	Wrapped     []byte // nil once destroyed
	CreatedAt   time.Time
	DestroyedAt time.Time
	// DestroyedFor is why it was destroyed: KeyDestroyedForDeparture, or ""
	// (its person's erasure, or a key destroyed before this was kept).
	DestroyedFor string
}

// KeyDestroyedForDeparture marks the key of a device that left management.
const KeyDestroyedForDeparture = "departure"

// KeyStore is the key vault.
type KeyStore interface {
	GetKeyset(ctx context.Context, tenantID string) (TenantKeyset, error)
	// CreateKeyset inserts k and reports false when the tenant already has one.
	CreateKeyset(ctx context.Context, k TenantKeyset) (bool, error)
	// SwapKeyset writes k only while the tenant's wrapping keyset is still
	// old, and reports whether it did.
	SwapKeyset(ctx context.Context, old []byte, k TenantKeyset) (bool, error)
	// ListKeysets lists every tenant's keyset, by tenant ID after p.After.
	ListKeysets(ctx context.Context, p Page) ([]TenantKeyset, error)
	// CreateDataKey inserts k; false when the owner already has a live key.
	CreateDataKey(ctx context.Context, k DataKey) (bool, error)
	GetDataKey(ctx context.Context, tenantID, id string) (DataKey, error)
	// DataKeyByOwner returns the owner's live key, or when it has none the
	// most recently destroyed one (an owner can get a new key after erasure).
	DataKeyByOwner(ctx context.Context, tenantID, owner string) (DataKey, error)
	// ListDataKeys pages through live and destroyed keys by ID.
	ListDataKeys(ctx context.Context, tenantID string, p Page) ([]DataKey, error)
	Rewrap(ctx context.Context, tenantID, id string, wrapped []byte) error
	// SetKeySubject records the person a device key now belongs to.
	SetKeySubject(ctx context.Context, tenantID, id, subjectID string) error
	// Destroy removes the key material, recording why (DataKey.DestroyedFor);
	// ErrNotFound when absent. A key destroyed already keeps its first time,
	// and its reason unless the new one is KeyDestroyedForDeparture (a
	// device that left after its person was erased).
	Destroy(ctx context.Context, tenantID, id string, at time.Time, why string) error
}

// PrivacySettingsStore holds each tenant's privacy settings document.
type PrivacySettingsStore interface {
	// Get returns the document and its version; ErrNotFound when the tenant
	// still runs on defaults.
	Get(ctx context.Context, tenantID string) (doc []byte, version int64, err error)
	// GetShared is Get holding a shared lock inside Tx (FOR SHARE), so a
	// policy change waits for in-flight ingestion and the reverse.
	GetShared(ctx context.Context, tenantID string) (doc []byte, version int64, err error)
	// Put stores doc as version expected+1; ErrConflict when the stored
	// version is not expected (0: none stored yet).
	Put(ctx context.Context, tenantID string, doc []byte, expected int64, at time.Time) error
}

// Approval is a change waiting for a second admin (two-person rule).
type Approval struct {
	ID          string
	TenantID    string
	Kind        string
	Payload     []byte
	Reason      string
	RequestedBy string
	State       string // pending, approved, rejected
	DecidedBy   string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	DecidedAt   time.Time
}

// ApprovalStore holds approvals.
type ApprovalStore interface {
	Create(ctx context.Context, a Approval) error
	Get(ctx context.Context, tenantID, id string) (Approval, error)
	List(ctx context.Context, tenantID string, p Page) ([]Approval, error)
	// Decide moves a pending approval to state; ErrConflict when it is no
	// longer pending (also under concurrency).
	Decide(ctx context.Context, tenantID, id, state, by string, at time.Time) error
	// Settled returns up to limit approvals of kind, of every tenant, that
	// can no longer be carried out at at: decided, or pending with an
	// ExpiresAt at or before at. By ID after afterID.
	Settled(ctx context.Context, kind string, at time.Time, afterID string, limit int) ([]Approval, error)
	// ForgetSecrets replaces the payload of an approval settled at at (see
	// Settled) with payload, what its caller keeps of it once the secrets
	// only a decision needed are gone. ErrNotFound when the tenant has no
	// such approval; ErrConflict when it may still be decided, so a payload
	// a second admin may still need is never lost.
	ForgetSecrets(ctx context.Context, tenantID, id string, payload []byte, at time.Time) error
	// PurgeBefore deletes up to limit approvals that expired before cutoff.
	PurgeBefore(ctx context.Context, cutoff time.Time, limit int) ([]PurgeCount, error)
}

// Notice is one language of one version of a privacy notice.
type Notice struct {
	ID          string
	TenantID    string
	Ownership   string
	Version     int64
	Language    string
	Title       string
	Body        string // Markdown
	CreatedBy   string
	PublishedAt time.Time
}

// NoticeStore holds privacy notices.
type NoticeStore interface {
	// Create inserts n; ErrConflict when that version and language exist.
	Create(ctx context.Context, n Notice) error
	// List returns the notices of an ownership class ("" for all), newest version first.
	List(ctx context.Context, tenantID, ownership string) ([]Notice, error)
}

// Consent records that a person accepted a notice version.
type Consent struct {
	ID            string
	TenantID      string
	SubjectID     string
	DeviceID      string
	Ownership     string
	NoticeVersion int64
	Language      string
	Method        string // enrolment, portal, admin-recorded
	AllowFullWipe bool
	AcceptedAt    time.Time
	WithdrawnAt   time.Time
	// Shown is what Steward showed the person: ConsentShownNoticeAndSummary,
	// ConsentShownNoticeOnly, ConsentShownOutsideSteward or
	// ConsentShownNotRecorded.
	Shown string
	// NoticeSHA256 is the hex SHA-256 of the notice body accepted.
	NoticeSHA256 string
	// SummarySHA256 is the hex SHA-256 of the plain-words summary shown,
	// whose text is kept once per tenant (ShownText); "" when none was.
	SummarySHA256 string
	// Summary is that text: Create stores it under SummarySHA256; lists
	// leave it empty, ShownText reads it.
	Summary string
	// SummaryUnverified is set when read back: the kept text is missing or
	// no longer hashes to SummarySHA256, so Summary is left empty.
	SummaryUnverified bool
}

// What a consent's person was shown by Steward.
const (
	ConsentShownNoticeAndSummary = "notice-and-summary"
	// ConsentShownOutsideSteward: an admin recorded a consent given
	// elsewhere; Steward showed nothing, so no summary is referenced.
	ConsentShownOutsideSteward = "outside-steward"
	// ConsentShownNoticeOnly: the client that took the consent did not
	// say it showed the summary (it sent no digest of it), so only the
	// notice is known to have been read.
	ConsentShownNoticeOnly = "notice-only"
	// ConsentShownNotRecorded: recorded before Steward kept what it showed.
	ConsentShownNotRecorded = "not-recorded"
)

// ConsentStore holds consents.
type ConsentStore interface {
	// Create inserts c and, when c.SummarySHA256 is set, keeps c.Summary
	// under it unless the tenant already holds that text.
	Create(ctx context.Context, c Consent) error
	// ShownText returns the tenant's text kept under digest; ErrNotFound
	// when there is none.
	ShownText(ctx context.Context, tenantID, digest string) (string, error)
	// ListForSubject returns a person's consents oldest first (by ID).
	ListForSubject(ctx context.Context, tenantID, subjectID string) ([]Consent, error)
	// Withdraw marks a live consent withdrawn; ErrConflict when already withdrawn.
	Withdraw(ctx context.Context, tenantID, id string, at time.Time) error
	// HoldForSubject holds a person's consents against withdrawal until
	// the transaction ends, waiting for one under way to commit: what is
	// read after it stands until then.
	HoldForSubject(ctx context.Context, tenantID, subjectID string) error
	// LiveVersions returns, ascending, the notice versions of class
	// ownership that at least one consent not withdrawn accepted.
	LiveVersions(ctx context.Context, tenantID, ownership string) ([]int64, error)
}

// AccessRecord says who read or revealed which personal fields, and why.
type AccessRecord struct {
	ID        string
	TenantID  string
	SubjectID string
	DeviceID  string
	Actor     string // "admin:<id>", "token:<id>", "subject:<id>"
	Action    string // read, reveal, export
	Fields    []string
	Reason    string
	At        time.Time
}

// AccessStore holds access records.
type AccessStore interface {
	Add(ctx context.Context, records []AccessRecord) error
	ListForSubject(ctx context.Context, tenantID, subjectID string, p Page) ([]AccessRecord, error)
	// PurgeBefore deletes up to limit records older than cutoff.
	PurgeBefore(ctx context.Context, cutoff time.Time, limit int) ([]PurgeCount, error)
}

// Reveal lets one principal (an admin's session or one API token; AdminID
// holds the actor reference "admin:<id>" or "token:<id>") see masked fields of one device until ExpiresAt.
type Reveal struct {
	ID        string
	TenantID  string
	AdminID   string
	DeviceID  string
	Fields    []string
	Reason    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// RevealStore holds reveals.
type RevealStore interface {
	Create(ctx context.Context, r Reveal) error
	// Active returns the admin's unexpired reveals for the device.
	Active(ctx context.Context, tenantID, adminID, deviceID string, now time.Time) ([]Reveal, error)
	DeleteForDevice(ctx context.Context, tenantID, deviceID string) (int, error)
	// PurgeExpired deletes up to limit reveals that ended before before.
	PurgeExpired(ctx context.Context, before time.Time, limit int) ([]PurgeCount, error)
}

// Erasure is a signed deletion certificate.
type Erasure struct {
	ID          string
	TenantID    string
	SubjectID   string
	DeviceID    string
	Certificate []byte // canonical JSON
	Signature   []byte // ed25519 by the audit signing key
	At          time.Time
}

// ErasureStore holds deletion certificates.
type ErasureStore interface {
	Create(ctx context.Context, e Erasure) error
	Get(ctx context.Context, tenantID, id string) (Erasure, error)
	List(ctx context.Context, tenantID string, p Page) ([]Erasure, error)
}

// Notification is an e-mail to a person, queued in the outbox.
type Notification struct {
	ID        string
	TenantID  string
	SubjectID string
	Kind      string
	// Ref names the record a key minted at send time belongs to (a mailed
	// enrolment link's enrolment).
	Ref           string
	Title         string
	Body          string
	State         string // queued, sent, failed
	Attempts      int
	LastError     string
	CreatedAt     time.Time
	NextAttemptAt time.Time
	SentAt        time.Time
}

// NotificationStore is the mail outbox.
type NotificationStore interface {
	Create(ctx context.Context, n Notification) error
	// Due returns queued notifications whose next attempt is due.
	Due(ctx context.Context, now time.Time, limit int) ([]Notification, error)
	// Update writes State, Attempts, LastError, NextAttemptAt and SentAt.
	Update(ctx context.Context, n Notification) error
	ListForSubject(ctx context.Context, tenantID, subjectID string) ([]Notification, error)
	// PurgeBefore deletes up to limit sent or failed notifications created
	// before cutoff.
	PurgeBefore(ctx context.Context, cutoff time.Time, limit int) ([]PurgeCount, error)
}

// PortalToken lets an employee read what Steward holds about them.
type PortalToken struct {
	ID         string
	TenantID   string
	SubjectID  string
	SecretHash []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RevokedAt  time.Time
}

// PortalTokenStore holds employee portal tokens.
type PortalTokenStore interface {
	Create(ctx context.Context, t PortalToken) error
	GetBySecretHash(ctx context.Context, hash []byte) (PortalToken, error)
	// RevokeForSubject revokes every token of the subject; returns how many.
	RevokeForSubject(ctx context.Context, tenantID, subjectID string, at time.Time) (int, error)
}

// SubjectDataStore removes what a person's erasure must remove, beyond the
// inventory: consents keep their proof value depersonalised, so they stay.
type SubjectDataStore interface {
	// DeleteForSubject removes access records, notifications and reveals
	// about the subject; returns rows removed per table.
	DeleteForSubject(ctx context.Context, tenantID, subjectID string) (map[string]int, error)
}
