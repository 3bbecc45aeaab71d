package store

import (
	"context"
	"time"
)

// Device management aggregates: the device's searchable projection, groups,
// configuration profiles, compliance, remote actions and the app catalogue.

// Compliance summary states of a device (Device.Compliance) and of one
// device under one policy (DeviceCompliance.State).
const (
	ComplianceUnknown      = "unknown"
	ComplianceCompliant    = "compliant"
	ComplianceNoncompliant = "noncompliant"
)

// DeviceProjection is the non-personal, searchable summary of a device,
// rebuilt from its inventory whenever the gate stores something. Personal
// values never appear here.
type DeviceProjection struct {
	TenantID  string
	DeviceID  string
	OSVersion string
	// OSVersionKey sorts versions numerically as text ("017.004.001").
	OSVersionKey string
	Model        string
	// Facts is a JSON object of the non-personal, non-hidden inventory
	// values by catalogue key; rules (groups, compliance) read it.
	Facts []byte
}

// DeviceSort orders a device search.
type DeviceSort string

const (
	SortByID        DeviceSort = "id"
	SortByLastSeen  DeviceSort = "last_seen"
	SortByEnrolled  DeviceSort = "enrolled"
	SortByOSVersion DeviceSort = "os_version"
	SortByModel     DeviceSort = "model"
)

// DeviceQuery filters, sorts and pages a device search. Empty fields do not
// filter. Every filter given must hold (AND).
type DeviceQuery struct {
	Platform   string
	Ownership  string
	State      string
	Compliance string
	// GroupID keeps members of that group.
	GroupID string
	// Scope, when not nil, keeps only members of at least one of these
	// groups: a role assignment limited to groups. An empty non-nil slice
	// matches nothing.
	Scope []string
	// LastSeenBefore / LastSeenAfter bound the last check-in (exclusive).
	LastSeenBefore time.Time
	LastSeenAfter  time.Time
	// OSVersionMin / OSVersionMax bound OSVersionKey (inclusive), already
	// normalised by the caller.
	OSVersionMin string
	OSVersionMax string
	// ModelPrefix matches the start of the model, case-insensitively.
	ModelPrefix string
	Sort        DeviceSort // SortByID when empty
	Descending  bool
	// After is the cursor: the sort key and ID of the last row of the
	// previous page, as returned by the store in DevicePage.Next.
	After DeviceCursor
	Limit int
}

// DeviceCursor is the position after a row: its sort value and ID.
type DeviceCursor struct {
	Value string
	ID    string
}

// DevicePage is one page of a device search; Next is zero at the end.
type DevicePage struct {
	Devices []Device
	Next    DeviceCursor
}

// ManagedDeviceStore reads and writes the management columns of devices.
type ManagedDeviceStore interface {
	// Search returns one page of the tenant's devices matching q, ordered
	// by q.Sort then ID (ties broken by ID in the same direction).
	Search(ctx context.Context, tenantID string, q DeviceQuery) (DevicePage, error)
	// SetProjection replaces the device's projection; ErrNotFound when the
	// device does not exist in the tenant.
	SetProjection(ctx context.Context, p DeviceProjection) error
	// Projections returns the projections of the tenant's devices in state
	// (all states when empty), by device ID, for rule evaluation.
	Projections(ctx context.Context, tenantID, state string) ([]DeviceProjection, error)
	// SetCompliance writes the device's compliance summary.
	SetCompliance(ctx context.Context, tenantID, deviceID, state string, at time.Time) error
	// Stale returns up to limit enrolled devices of the tenant last seen
	// before cutoff, oldest first, after the cursor: those not flagged
	// stale yet, and those flagged before flaggedBefore (zero: none of the
	// flagged ones).
	Stale(ctx context.Context, tenantID string, cutoff, flaggedBefore time.Time, after StaleCursor, limit int) ([]Device, error)
	// SetStaleSince marks (or with zero, clears) when the device was flagged
	// stale.
	SetStaleSince(ctx context.Context, tenantID, deviceID string, at time.Time) error
}

// Group kinds.
const (
	GroupStatic  = "static"
	GroupDynamic = "dynamic"
)

// Group is a set of devices: listed by hand (static) or matching a rule
// over inventory facts (dynamic).
type Group struct {
	ID          string
	TenantID    string
	Name        string
	Description string
	Kind        string
	Rule        []byte // canonical rule JSON; dynamic groups only
	Members     int    // filled by Get and List
	CreatedBy   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// GroupStore holds groups and their members.
type GroupStore interface {
	// Create adds g; ErrConflict when the tenant has a group of that name.
	Create(ctx context.Context, g Group) error
	Get(ctx context.Context, tenantID, id string) (Group, error)
	List(ctx context.Context, tenantID string, p Page) ([]Group, error)
	// Dynamic returns every dynamic group of the tenant.
	Dynamic(ctx context.Context, tenantID string) ([]Group, error)
	// Update writes Name, Description, Rule and UpdatedAt; ErrConflict on a
	// duplicate name.
	Update(ctx context.Context, g Group) error
	// Delete removes the group, its members, and its profile and app
	// assignments. Role scopes naming it are kept, so a group-limited role
	// never widens to the whole tenant.
	Delete(ctx context.Context, tenantID, id string) error
	// AddMembers adds devices of the tenant to the group; devices already
	// members and IDs that are not devices of the tenant are skipped. It
	// returns the IDs actually added.
	AddMembers(ctx context.Context, tenantID, groupID string, deviceIDs []string, at time.Time) ([]string, error)
	// RemoveMembers removes devices from the group and returns the IDs
	// actually removed.
	RemoveMembers(ctx context.Context, tenantID, groupID string, deviceIDs []string) ([]string, error)
	// Members returns a page of the group's device IDs, ascending.
	Members(ctx context.Context, tenantID, groupID string, p Page) ([]string, error)
	// MemberClasses counts the group's members per ownership class of their
	// devices.
	MemberClasses(ctx context.Context, tenantID, groupID string) (map[string]int, error)
	// HiddenMemberClasses counts, per ownership class, the group's members
	// whose current value of field was stored hidden (InventoryValue.Hidden).
	HiddenMemberClasses(ctx context.Context, tenantID, groupID, field string) (map[string]int, error)
	// AllMembers returns every device ID of the group.
	AllMembers(ctx context.Context, tenantID, groupID string) ([]string, error)
	// GroupsOf returns the IDs of the groups the device belongs to.
	GroupsOf(ctx context.Context, tenantID, deviceID string) ([]string, error)
	// InAny reports whether the device belongs to at least one of groupIDs.
	InAny(ctx context.Context, tenantID, deviceID string, groupIDs []string) (bool, error)
}

// Profile kinds.
const (
	ProfileBuilt  = "built"  // from a typed definition
	ProfileCustom = "custom" // an uploaded .mobileconfig
)

// ConfigProfile is a configuration profile for Apple devices.
type ConfigProfile struct {
	ID         string
	TenantID   string
	Name       string
	Identifier string // the profile's PayloadIdentifier
	Kind       string
	Platform   string // "apple" for now
	// Definition is the public part (secrets removed) of a built profile;
	// empty for a custom one.
	Definition []byte
	// Sealed holds, encrypted under the tenant's keyset, the secrets of a
	// built profile or the whole uploaded file of a custom one.
	Sealed []byte
	// Digest identifies the content: a device holding another digest needs
	// the profile again.
	Digest       string
	PayloadTypes []string
	CreatedBy    string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// ProfileStore holds profiles and their group assignments.
type ProfileStore interface {
	// Create adds p; ErrConflict when the tenant has a profile with that
	// Identifier.
	Create(ctx context.Context, p ConfigProfile) error
	Get(ctx context.Context, tenantID, id string) (ConfigProfile, error)
	List(ctx context.Context, tenantID string, pg Page) ([]ConfigProfile, error)
	// Update writes Name, Definition, Sealed, Digest, PayloadTypes and
	// UpdatedAt (the Identifier never changes).
	Update(ctx context.Context, p ConfigProfile) error
	// Delete removes the profile, its assignments and its device states.
	Delete(ctx context.Context, tenantID, id string) error
	// Share holds profiles ids (another tenant's are passed over) against
	// edits until the transaction ends, in ID order; it waits for an edit
	// under way to commit.
	Share(ctx context.Context, tenantID string, ids []string) error
	// Assign targets the profile at a group; assigning twice is a no-op.
	// ErrNotFound when the profile or the group is not the tenant's.
	Assign(ctx context.Context, tenantID, profileID, groupID string, at time.Time) error
	Unassign(ctx context.Context, tenantID, profileID, groupID string) error
	// Groups returns the groups the profile is assigned to.
	Groups(ctx context.Context, tenantID, profileID string) ([]string, error)
	// ForGroups returns the profiles assigned to any of groupIDs.
	ForGroups(ctx context.Context, tenantID string, groupIDs []string) ([]ConfigProfile, error)
}

// Device profile states.
const (
	// ProfilePending: install queued, not yet answered; or, with no
	// CommandID, not sent yet as Steward waits to learn whether the device
	// can take it (Waiting).
	ProfilePending        = "pending"
	ProfileInstalled      = "installed"       // the device acknowledged the install
	ProfileFailed         = "failed"          // the device refused it; Error says why
	ProfileRemovalPending = "removal_pending" // removal queued
	ProfileRemovalFailed  = "removal_failed"  // the device refused to remove it
	// ProfileNotApplicable: never sent, as the device cannot or may not
	// take it (its platform, enrolment, ownership or supervision); Error
	// says why.
	ProfileNotApplicable = "not_applicable"
	// ProfileNotApplicableRemovalPending: the current version does not
	// apply (Error says why) and the removal of an earlier one the device
	// holds is queued; acknowledged, the state becomes not_applicable.
	ProfileNotApplicableRemovalPending = "not_applicable_removal_pending"
	// ProfileNotApplicableRemovalFailed: as above, but the device refused
	// that removal or its queue was full; Error says so. The next
	// reconciliation of the device tries again, and so does the hourly
	// retry (RetryAt).
	ProfileNotApplicableRemovalFailed = "not_applicable_removal_failed"
)

// OnDevice reports whether the profile may be on the device: sent and not
// refused, nor known to be removed.
func (dp DeviceProfile) OnDevice() bool {
	return dp.Status != ProfileFailed && dp.Status != ProfileNotApplicable && !dp.Waiting()
}

// Waiting reports whether the profile is pending but not sent: Steward
// waits for the device to report what decides whether it takes it.
func (dp DeviceProfile) Waiting() bool {
	return dp.Status == ProfilePending && dp.CommandID == ""
}

// DeviceProfile is a profile's state on one device.
type DeviceProfile struct {
	TenantID  string
	DeviceID  string
	ProfileID string
	Digest    string // the content queued or installed
	Status    string
	CommandID string
	Error     string
	UpdatedAt time.Time
	// Attempts counts the failed sends of this version in a row (a refusal
	// or a full queue): the back-off of its retries grows with it.
	Attempts int
	// RetryAt is when a failed state (failed, removal_failed,
	// not_applicable_removal_failed) is sent again; zero when it is not.
	RetryAt time.Time
}

// DeviceProfileStore holds per-device profile states.
type DeviceProfileStore interface {
	// Put upserts the state of (device, profile).
	Put(ctx context.Context, dp DeviceProfile) error
	Get(ctx context.Context, tenantID, deviceID, profileID string) (DeviceProfile, error)
	// ForDevice returns every profile state of the device.
	ForDevice(ctx context.Context, tenantID, deviceID string) ([]DeviceProfile, error)
	// ForProfile returns a page of the profile's device states, by device ID.
	ForProfile(ctx context.Context, tenantID, profileID string, p Page) ([]DeviceProfile, error)
	// ByCommand returns the state waiting on commandID.
	ByCommand(ctx context.Context, tenantID, commandID string) (DeviceProfile, error)
	// DueForRetry returns a page of the IDs of the tenant's devices with a
	// state whose RetryAt is set and not after at, by device ID (Page.After
	// is a device ID).
	DueForRetry(ctx context.Context, tenantID string, at time.Time, p Page) ([]string, error)
	Delete(ctx context.Context, tenantID, deviceID, profileID string) error
}

// CompliancePolicy is a set of rules for devices of one platform and
// ownership class, with a graduated ladder of actions.
type CompliancePolicy struct {
	ID        string
	TenantID  string
	Name      string
	Platform  string // "" for every platform
	Ownership string // "" for every class
	GroupID   string // "" for every device; else members of this group only
	Rules     []byte // JSON, validated by the compliance package
	Ladder    []byte // JSON, validated by the compliance package
	Enabled   bool
	CreatedBy string
	// UpdatedBy is the admin who last changed the policy (its creator until
	// then): the requester of the retires its ladder asks for.
	UpdatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DeviceCompliance is a device's standing under one policy.
type DeviceCompliance struct {
	TenantID   string
	DeviceID   string
	PolicyID   string
	State      string
	Violations []byte // JSON list of the failed rules and their reasons
	// Since is when the device entered State; the ladder's grace periods
	// count from it.
	Since time.Time
	// Steps is how many ladder steps have been carried out since.
	Steps       int
	EvaluatedAt time.Time
	// NextStepAt is when the next ladder step falls due; zero when none.
	NextStepAt time.Time
}

// ComplianceEvent is one entry of a device's compliance history: a change
// of state or a ladder step carried out.
type ComplianceEvent struct {
	ID         string
	TenantID   string
	DeviceID   string
	PolicyID   string
	State      string
	Violations []byte
	Action     string // the ladder step carried out; "" for a state change
	At         time.Time
	ExpiresAt  time.Time
}

// ComplianceStore holds policies, device standings and their history.
type ComplianceStore interface {
	CreatePolicy(ctx context.Context, p CompliancePolicy) error
	GetPolicy(ctx context.Context, tenantID, id string) (CompliancePolicy, error)
	ListPolicies(ctx context.Context, tenantID string, pg Page) ([]CompliancePolicy, error)
	// UpdatePolicy writes Name, Platform, Ownership, GroupID, Rules, Ladder,
	// Enabled, UpdatedBy and UpdatedAt.
	UpdatePolicy(ctx context.Context, p CompliancePolicy) error
	// DeletePolicy removes the policy and the standings under it (history
	// stays until its retention ends).
	DeletePolicy(ctx context.Context, tenantID, id string) error
	// PutStanding upserts the standing of (device, policy).
	PutStanding(ctx context.Context, c DeviceCompliance) error
	// Standings returns the device's standings under every policy.
	Standings(ctx context.Context, tenantID, deviceID string) ([]DeviceCompliance, error)
	// ForPolicy returns every standing under the policy.
	ForPolicy(ctx context.Context, tenantID, policyID string) ([]DeviceCompliance, error)
	// DeleteStanding removes the standing of (device, policy).
	DeleteStanding(ctx context.Context, tenantID, deviceID, policyID string) error
	// DueSteps returns up to limit standings, of any tenant, whose next
	// ladder step is due at or before now.
	DueSteps(ctx context.Context, now time.Time, limit int) ([]DeviceCompliance, error)
	AppendEvent(ctx context.Context, e ComplianceEvent) error
	// History returns the device's events, newest first.
	History(ctx context.Context, tenantID, deviceID string, p Page) ([]ComplianceEvent, error)
	// PurgeHistory deletes up to limit events that expired before cutoff.
	PurgeHistory(ctx context.Context, cutoff time.Time, limit int) ([]PurgeCount, error)
}

// Remote action states.
const (
	ActionAwaitingApproval = "awaiting_approval"
	ActionQueued           = "queued"   // the command is in the device's queue
	ActionDone             = "done"     // the device acknowledged it
	ActionFailed           = "failed"   // the device answered with an error
	ActionRefused          = "refused"  // a rule refused it for this device
	ActionRejected         = "rejected" // the second admin rejected it
	ActionExpired          = "expired"  // its approval expired
)

// DeviceAction is one remote action on one device; a bulk action is many,
// sharing BatchID.
type DeviceAction struct {
	ID          string
	TenantID    string
	BatchID     string
	DeviceID    string
	Action      string
	Reason      string
	RequestedBy string
	ApprovalID  string
	State       string
	CommandID   string
	Error       string
	// Final marks a leaving device's removal after which Steward sends no
	// other, though attempts were left: it gave up on the device early.
	Final bool
	// RefusalCode is why a rule refused the action, as a stable code
	// (actions.RefusalCodes); Error says it for a person. Empty unless
	// State is ActionRefused.
	RefusalCode string
	// SealedPIN is the Find My PIN a Mac's lock or erase carried, sealed
	// (actions.RevealPIN); nil for any other action.
	SealedPIN []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// StaleCursor continues Stale after the last device of the previous page
// (its LastSeenAt and ID); the zero value starts at the oldest.
type StaleCursor struct {
	LastSeenAt time.Time
	ID         string
}

// ActionStore holds remote actions.
type ActionStore interface {
	// Create adds every action in one statement batch.
	Create(ctx context.Context, as []DeviceAction) error
	Get(ctx context.Context, tenantID, id string) (DeviceAction, error)
	// Batch returns a page of the batch's actions, by ID.
	Batch(ctx context.Context, tenantID, batchID string, p Page) ([]DeviceAction, error)
	// BatchCounts returns how many of the batch's actions are in each state.
	BatchCounts(ctx context.Context, tenantID, batchID string) (map[string]int, error)
	// ForDevice returns a page of the device's actions, newest first.
	ForDevice(ctx context.Context, tenantID, deviceID string, p Page) ([]DeviceAction, error)
	// ForApproval returns every action waiting on the approval.
	ForApproval(ctx context.Context, tenantID, approvalID string) ([]DeviceAction, error)
	// ByCommand returns the action that queued commandID.
	ByCommand(ctx context.Context, tenantID, commandID string) (DeviceAction, error)
	// LastQueued returns the device's newest action of the given kind that
	// queued a command (has a CommandID); ErrNotFound when none did.
	LastQueued(ctx context.Context, tenantID, deviceID, action string) (DeviceAction, error)
	// LastPINTaken returns the device's newest action of the given kind
	// whose kept PIN the device took, and when: one it acknowledged
	// (ActionDone, at UpdatedAt), or one whose command it fetched and has
	// not answered (CommandSent, at the command's SentAt). ErrNotFound when
	// none.
	LastPINTaken(ctx context.Context, tenantID, deviceID, action string) (DeviceAction, time.Time, error)
	// BatchDevices returns how many distinct devices the batch's actions name.
	BatchDevices(ctx context.Context, tenantID, batchID string) (int, error)
	// Update writes State, CommandID, Error, Final, RefusalCode and
	// UpdatedAt; never SealedPIN, which a caller may have read before a
	// master-key rotation re-sealed it (KeepPIN; SealedActionPINs).
	Update(ctx context.Context, a DeviceAction) error
	// KeepPIN sets the sealed PIN of an action that carried one.
	KeepPIN(ctx context.Context, tenantID, id string, sealed []byte) error
	// WithPINs pages through the actions of every tenant that hold a sealed
	// PIN, by ID after afterID.
	WithPINs(ctx context.Context, afterID string, limit int) ([]DeviceAction, error)
	// PurgeFinished deletes up to limit actions, of any tenant, that
	// finished before cutoff: done, failed, refused, rejected or expired,
	// by UpdatedAt (an action's last change, the one that finished it), or
	// awaiting an approval that lapsed before cutoff or is gone, which can
	// no longer be decided. It keeps, whatever their age, every action
	// still awaiting a live approval or queued; the newest erase a device
	// acknowledged with a Find My PIN, and its newest such lock while it
	// has not checked in since (LastPINTaken may still return them, and a
	// Mac that leaves management keeps its PIN from them);
	// and the retires of a device still leaving, which count its removal
	// attempts. Counted under the category "remote_actions".
	PurgeFinished(ctx context.Context, cutoff time.Time, limit int) ([]PurgeCount, error)
}

// DepartedPIN is the Find My PIN of a Mac that left management at a
// firmware lock or an erase, kept after its device record is purged: a Mac
// found later still asks for it (actions.KeepPINPastDeparture).
type DepartedPIN struct {
	ID       string // the action that carried the PIN: its seal is bound to it
	TenantID string
	DeviceID string // the record it came from, purged some time after the departure
	// SerialIndex is the serial number's blind index, to find the PIN from
	// the Mac in hand; nil when the Mac never reported its serial number.
	SerialIndex []byte
	Action      string // lock or wipe
	SealedPIN   []byte
	SentAt      time.Time // when the Mac took the lock or erase (acknowledged, or fetched unanswered)
	KeptAt      time.Time // when it left management
	ExpiresAt   time.Time
}

// DepartedPINFilter narrows a list of departed PINs; both empty lists all.
type DepartedPINFilter struct {
	SerialIndex []byte
	DeviceID    string
	Page        Page
}

// DepartedPINStore holds the PINs of Macs that left management.
type DepartedPINStore interface {
	// Keep adds p; one kept already (the same ID) is left as it is.
	Keep(ctx context.Context, p DepartedPIN) error
	Get(ctx context.Context, tenantID, id string) (DepartedPIN, error)
	// List returns a page of the tenant's PINs, by ID.
	List(ctx context.Context, tenantID string, f DepartedPINFilter) ([]DepartedPIN, error)
	// All pages through every tenant's PINs, by ID after afterID.
	All(ctx context.Context, afterID string, limit int) ([]DepartedPIN, error)
	// PurgeExpired deletes up to limit PINs that expired before now.
	PurgeExpired(ctx context.Context, now time.Time, limit int) ([]PurgeCount, error)
}

// App catalogue kinds and assignment modes.
const (
	AppApproved = "approved"
	AppBlocked  = "blocked"

	AppRequired  = "required"
	AppAvailable = "available"
)

// CatalogueApp is an app the tenant approves (and may deploy) or blocks.
type CatalogueApp struct {
	ID          string
	TenantID    string
	Identifier  string // bundle ID
	Name        string
	Kind        string
	StoreID     int64  // App Store ID for store apps, 0 otherwise
	ManifestURL string // in-house apps
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// AppAssignment targets an approved app at a group.
type AppAssignment struct {
	TenantID string
	AppID    string
	GroupID  string
	Mode     string
}

// AppStore holds the app catalogue and its assignments.
type AppStore interface {
	// Create adds a; ErrConflict when the tenant already lists Identifier.
	Create(ctx context.Context, a CatalogueApp) error
	Get(ctx context.Context, tenantID, id string) (CatalogueApp, error)
	List(ctx context.Context, tenantID string, p Page) ([]CatalogueApp, error)
	// Update writes Name, Kind, StoreID, ManifestURL and UpdatedAt.
	Update(ctx context.Context, a CatalogueApp) error
	// Delete removes the app and its assignments.
	Delete(ctx context.Context, tenantID, id string) error
	// Assign upserts the app's assignment to a group (the mode may change).
	Assign(ctx context.Context, as AppAssignment) error
	Unassign(ctx context.Context, tenantID, appID, groupID string) error
	// Assignments returns the app's assignments.
	Assignments(ctx context.Context, tenantID, appID string) ([]AppAssignment, error)
	// ForGroups returns the assignments to any of groupIDs.
	ForGroups(ctx context.Context, tenantID string, groupIDs []string) ([]AppAssignment, error)
}

// ReportSchedule mails a report to admins at a fixed cadence, as a
// password-protected archive behind an expiring link.
type ReportSchedule struct {
	ID         string
	TenantID   string
	Kind       string
	Format     string
	Recipients []string // admin IDs
	Every      string   // daily, weekly or monthly
	LinkDays   int
	// PasswordSealed is the archive password, sealed: shown once to the
	// admin who created the schedule, needed again for every run.
	PasswordSealed []byte
	NextRunAt      time.Time
	LastRunAt      time.Time
	CreatedBy      string
	CreatedAt      time.Time
}

// PublishedReport is one run's archive, downloadable by its link until it
// expires.
type PublishedReport struct {
	ID         string
	TenantID   string
	ScheduleID string
	TokenHash  []byte
	Archive    []byte // the password-protected archive
	ExpiresAt  time.Time
	CreatedAt  time.Time
}

// ReportStore holds report schedules and their published archives.
type ReportStore interface {
	CreateSchedule(ctx context.Context, s ReportSchedule) error
	GetSchedule(ctx context.Context, tenantID, id string) (ReportSchedule, error)
	ListSchedules(ctx context.Context, tenantID string, p Page) ([]ReportSchedule, error)
	// DeleteSchedule removes the schedule and its published reports (their
	// links stop working).
	DeleteSchedule(ctx context.Context, tenantID, id string) error
	// DueSchedules returns up to limit schedules of any tenant due at now.
	DueSchedules(ctx context.Context, now time.Time, limit int) ([]ReportSchedule, error)
	// MarkRun records a run and the next one.
	MarkRun(ctx context.Context, tenantID, id string, ran, next time.Time) error
	Publish(ctx context.Context, r PublishedReport) error
	// PublishedByToken ignores the tenant: the link names none. Expired
	// reports are returned; the caller refuses them.
	PublishedByToken(ctx context.Context, tokenHash []byte) (PublishedReport, error)
	// PurgePublished deletes up to limit reports that expired before cutoff.
	PurgePublished(ctx context.Context, cutoff time.Time, limit int) ([]PurgeCount, error)
}
