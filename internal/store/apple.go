package store

import (
	"context"
	"time"
)

// Apple MDM aggregates: enrolments, the device's MDM channel and its
// command queue.

// Enrolment states.
const (
	EnrolmentOpen = "open"
	// EnrolmentAccepted: the employee accepted the notice; the profile may
	// be downloaded and the device may enrol once.
	EnrolmentAccepted = "accepted"
	EnrolmentUsed     = "used"
	EnrolmentRevoked  = "revoked"
)

// Enrolment is an invitation to enrol one device: an admin creates it, the
// employee opens its link, accepts the notice and installs the profile.
type Enrolment struct {
	ID             string
	TenantID       string
	Ownership      string
	SubjectID      string // the person it is for ("" for shared/kiosk)
	GroupID        string
	NoticeVersion  int64
	UserEnrollment bool // Apple User Enrollment (BYOD): no UDID, no serial
	// AllowFullWipe: the employee allowed erasing this (personal) device
	// when accepting the notice.
	AllowFullWipe bool
	// LinkMailed: the link went to its person by mail, minted as the mail
	// left (SetSecretHash), and no admin ever saw it.
	LinkMailed bool
	// AccessRights are those its device was granted: by the profile it
	// installed, or fewer by a renewal's (0: none recorded).
	AccessRights int
	SecretHash   []byte // hash of the link secret
	State        string
	CreatedBy    string
	DeviceID     string // set once a device enrolled with it
	CreatedAt    time.Time
	ExpiresAt    time.Time
	UsedAt       time.Time
}

// EnrolmentStore holds enrolments.
type EnrolmentStore interface {
	// Create inserts e; ErrNotFound when its tenant is gone. The tenant
	// cannot be deleted until the transaction ends.
	Create(ctx context.Context, e Enrolment) error
	Get(ctx context.Context, tenantID, id string) (Enrolment, error)
	// GetShared is Get holding the row under a shared lock inside Tx (FOR
	// SHARE): a change to it under way (TakeBackFullWipe) is waited for and
	// read, and one that comes later waits for the transaction.
	GetShared(ctx context.Context, tenantID, id string) (Enrolment, error)
	// GetBySecretHash ignores the tenant: the link names none.
	GetBySecretHash(ctx context.Context, hash []byte) (Enrolment, error)
	List(ctx context.Context, tenantID string, p Page) ([]Enrolment, error)
	// ListForSubject returns the person's enrolments, oldest first. It
	// reads the tenant's enrolments to find them: it serves data-subject
	// exports and consents that take back a full-wipe permission, both rare.
	ListForSubject(ctx context.Context, tenantID, subjectID string) ([]Enrolment, error)
	// Update writes State, AllowFullWipe, DeviceID and UsedAt.
	Update(ctx context.Context, e Enrolment) error
	// Accept marks an open enrolment accepted, with the employee's answer
	// on a full wipe; ErrConflict when it is not open any more (of two
	// acceptances at once, one counts).
	Accept(ctx context.Context, tenantID, id string, allowFullWipe bool) error
	// TakeBackFullWipe withdraws the employee's permission to erase the
	// enrolment's device, whatever its state. Nothing grants it again but
	// a new enrolment.
	TakeBackFullWipe(ctx context.Context, tenantID, id string) error
	// SetSecretHash gives an open enrolment a new link secret (a mailed
	// link's, minted at send time); ErrConflict when it is not open.
	SetSecretHash(ctx context.Context, tenantID, id string, hash []byte) error
	// SetAccessRights records the access rights the enrolment's device was
	// granted; ErrNotFound when the tenant has no such enrolment.
	SetAccessRights(ctx context.Context, tenantID, id string, rights int) error
	// Use marks an accepted enrolment used by deviceID; ErrConflict when it
	// is not accepted any more (of two racing devices, one wins).
	Use(ctx context.Context, tenantID, id, deviceID string, at time.Time) error
	// Revoke marks the enrolment revoked if it is in one of the states
	// from (open or accepted: no device used it; used: its device's
	// installation failed and the link could be tried again). ErrConflict
	// when it is in none of them any more: of a revocation and a device
	// using the link at once (Use), one wins. ErrNotFound when the tenant
	// has no such enrolment. Its device and use stay recorded.
	Revoke(ctx context.Context, tenantID, id string, from ...string) error
	// PurgeUnused deletes up to limit enrolments no device used whose link
	// expired before cutoff. Used ones go with their device's purge.
	PurgeUnused(ctx context.Context, cutoff time.Time, limit int) ([]PurgeCount, error)
	// PendingVersions returns, ascending, the notice versions of class
	// ownership that enrolments no device used yet (open or accepted,
	// expired or not) were made under.
	PendingVersions(ctx context.Context, tenantID, ownership string) ([]int64, error)
}

// AppleChannel is a device's MDM channel: how it proves who it is and how
// it is woken. One per device (the device channel); a Mac's users have
// their own (AppleUserChannel), under the same identity.
type AppleChannel struct {
	DeviceID string
	TenantID string
	// CertFingerprint is the SHA-256 of the identity certificate the device
	// signs with; unique, so one certificate can never speak for two devices.
	CertFingerprint []byte
	// CertSerial is the certificate's serial number in decimal; empty for
	// channels created before it was kept.
	CertSerial   string
	CertNotAfter time.Time
	EnrolmentID  string
	// ChannelIndex is a keyed index of the UDID (or the User Enrollment
	// EnrollmentID): every check-in must name the same one.
	ChannelIndex []byte
	Topic        string
	PushToken    []byte
	PushMagic    string
	UnlockToken  []byte // sealed
	// Bootstrap is the sealed bootstrap token (macOS).
	Bootstrap   []byte
	CheckedOut  bool
	LastCheckin time.Time
	// PushDueAt is when the device is due a push (zero: none); the push
	// queue lives here so a crash loses no push.
	PushDueAt    time.Time
	PushAttempts int
	// RenewalCommand is the InstallProfile that last carried the device a
	// re-issued enrolment profile (a new identity), queued at RenewalAt.
	RenewalCommand string
	RenewalAt      time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// TokenAt is when the device last sent its push token: a token APNs
	// found dead before then was registered again and stays.
	TokenAt time.Time
}

// DeadToken is a push token APNs refused, and since when it is dead (the
// time of a 410, else of the refusal).
type DeadToken struct {
	Token []byte
	Since time.Time
}

// AppleChannelStore holds channels.
type AppleChannelStore interface {
	// Create inserts c; ErrConflict when the certificate or device already
	// has a channel.
	Create(ctx context.Context, c AppleChannel) error
	Get(ctx context.Context, tenantID, deviceID string) (AppleChannel, error)
	// GetByCert finds the channel of an identity certificate, any tenant
	// (the certificate is what identifies the device).
	GetByCert(ctx context.Context, fingerprint []byte) (AppleChannel, error)
	// GetByCertWithDevice is GetByCert with the channel's device, in one
	// read; ErrNotFound when no channel with a device holds the certificate.
	GetByCertWithDevice(ctx context.Context, fingerprint []byte) (AppleChannel, Device, error)
	// Presence is GetByCert with what an idle check-in needs besides, in
	// one read; ErrNotFound when no channel holds the certificate.
	Presence(ctx context.Context, fingerprint []byte) (ChannelPresence, error)
	// GetByEnrolment finds the channel an enrolment created.
	GetByEnrolment(ctx context.Context, tenantID, enrolmentID string) (AppleChannel, error)
	// Update writes every mutable field of a channel still open, but
	// CheckedOut (CheckOut closes a channel): one checked out since it was
	// read gives ErrNotFound and stays as it is, so a message racing a
	// departure cannot bring the channel back.
	Update(ctx context.Context, c AppleChannel) error
	// Change writes what one message of the device changes, and nothing
	// else, to its channel if still open and, when c.Signer is set, still
	// held by that certificate (ErrNotFound otherwise): messages of one
	// device that run at once each keep their own columns, where writing
	// back a whole row read earlier would undo the other's.
	Change(ctx context.Context, tenantID, deviceID string, c ChannelChange) error
	// MoveCertificate moves the channel from the certificate with
	// fingerprint from to cert, if it still holds from and is open;
	// ErrConflict when it does not.
	MoveCertificate(ctx context.Context, tenantID, deviceID string, from []byte, cert ChannelCertificate, at time.Time) error
	// Restart moves an unfinished channel (open, never sent a push token)
	// from the certificate with fingerprint from to cert, naming the device
	// index and topic of its new Authenticate, drops the tokens the first
	// attempt escrowed (bootstrap, unlock), and counts its age (for
	// Unfinished) from at; ErrConflict when the channel holds another
	// certificate, closed or got a token meanwhile.
	Restart(ctx context.Context, tenantID, deviceID string, from []byte, cert ChannelCertificate, index []byte, topic string, at time.Time) error
	// OpenTopics counts the tenant's device channels not checked out by
	// their Topic: only a push certificate for a channel's topic can wake
	// its device.
	OpenTopics(ctx context.Context, tenantID string) (map[string]int, error)
	// OpenOfDeparted returns up to limit channels still open whose devices
	// left management (deprovisioned, retired or wiped), any tenant.
	OpenOfDeparted(ctx context.Context, limit int) ([]AppleChannel, error)
	// Unfinished returns up to limit open channels, oldest first, created
	// before createdBefore whose device is still pending: it sent
	// Authenticate and never its first TokenUpdate.
	Unfinished(ctx context.Context, createdBefore time.Time, limit int) ([]AppleChannel, error)
	// OpenByIndex returns the tenant's open channels whose ChannelIndex is
	// index, oldest first: the enrolments of one device, as it names itself.
	OpenByIndex(ctx context.Context, tenantID string, index []byte) ([]AppleChannel, error)
	// CheckOut closes a channel for good at at: checked out, its push,
	// unlock and bootstrap tokens gone. Closing a closed channel is no error.
	CheckOut(ctx context.Context, tenantID, deviceID string, at time.Time) error
	// SchedulePush makes the devices due a push at at (keeping an earlier
	// due time) and returns how many can be pushed.
	SchedulePush(ctx context.Context, tenantID string, deviceIDs []string, at time.Time) (int, error)
	// ClaimPushes takes up to limit pushable channels due at or before now,
	// any tenant, oldest due first, and makes them due again at until, the
	// claim: two pushers never take one channel, and one that stops before
	// recording the outcome leaves the push to the next once the claim
	// lapses. A push scheduled meanwhile moves the due time off the claim.
	ClaimPushes(ctx context.Context, now, until time.Time, limit int) ([]AppleChannel, error)
	// ExpiringCertificates returns up to limit open channels (not checked
	// out) of enrolled or leaving devices (a leaving one needs its channel
	// until it removes its management profile) whose identity certificate
	// expires between after and before and whose last renewal was queued
	// before renewedBefore (or never), soonest first. A certificate expired
	// by after cannot be renewed: its device must enrol again.
	ExpiringCertificates(ctx context.Context, after, before, renewedBefore time.Time, limit int) ([]AppleChannel, error)
	// RenewalQueued records the command that carries a device its renewal.
	RenewalQueued(ctx context.Context, tenantID, deviceID, commandID string, at time.Time) error
	// CertificateExpiry counts, per tenant, the open channels whose identity
	// certificate expires before soon, and of those, the ones expired at now.
	CertificateExpiry(ctx context.Context, now, soon time.Time) ([]CertificateExpiryCount, error)
	// PushDone records the outcome of a push claimed until claimed: next
	// zero clears the due time, otherwise the push is retried then. Nothing
	// changes if the due time is no longer the claim (a push was scheduled,
	// or the channel closed, since). A non-nil dead is the token APNs
	// refused: if the channel still holds it and last sent it no later than
	// dead.Since, it is dropped and nothing is due, claim or not; otherwise
	// the device sent a token since, and the push is retried at next.
	PushDone(ctx context.Context, tenantID, deviceID string, claimed, next time.Time, attempts int, dead *DeadToken) error
}

// ChannelChange is what a device message changes on its channel; At is
// always written (last check-in and update time), the rest when set.
type ChannelChange struct {
	At time.Time
	// Signer, when set, is the certificate fingerprint the message was
	// signed with: a channel another identity took over meanwhile (a
	// retried installation, a renewal) is not changed.
	Signer []byte
	// Push, when set, is the device's new push registration.
	Push *PushRegistration
	// UnlockToken, when not nil, replaces the escrowed (sealed) unlock token.
	UnlockToken []byte
	// Bootstrap, when not nil, replaces the escrowed (sealed) bootstrap
	// token; an empty one removes it.
	Bootstrap *[]byte
	// CertSerial, when not empty, records the serial of the channel's
	// certificate.
	CertSerial string
}

// PushRegistration is how APNs reaches a device, from its TokenUpdate.
type PushRegistration struct {
	Token []byte
	Magic string
	Topic string
	At    time.Time // when the device sent it (TokenAt)
}

// ChannelCertificate is the identity certificate a channel is bound to.
type ChannelCertificate struct {
	Fingerprint []byte
	Serial      string
	NotAfter    time.Time
}

// AppleUserChannel is the MDM channel of one user of a Mac (or a Shared
// iPad): its own push token and its own commands, signed with the device's
// identity. Steward keeps no name, only keyed indexes of the user's ID and
// account name, and a closed channel forgets those too.
type AppleUserChannel struct {
	ID       string
	TenantID string
	DeviceID string
	// UserIndex is a keyed index of the user's ID on the device, unique per
	// device among open channels: how a check-in finds its channel. Nil
	// once closed.
	UserIndex []byte
	// AccountIndex is a keyed index of the account's short name, so an
	// admin who knows the account can find its channel. Nil once closed.
	AccountIndex []byte
	Topic        string
	PushToken    []byte
	PushMagic    string
	CheckedOut   bool
	LastCheckin  time.Time
	PushDueAt    time.Time
	PushAttempts int
	CreatedAt    time.Time
	UpdatedAt    time.Time
	TokenAt      time.Time // as AppleChannel.TokenAt; Open sets it to UpdatedAt
}

// AppleUserChannelStore holds user channels.
type AppleUserChannelStore interface {
	// Open records a TokenUpdate on a user channel: it creates the channel
	// of (TenantID, DeviceID, UserIndex) at c.UpdatedAt, or writes the
	// token, topic, account index and check-in time of the open one there,
	// and returns it as stored (with the ID of the one there).
	Open(ctx context.Context, c AppleUserChannel) (AppleUserChannel, error)
	Get(ctx context.Context, tenantID, id string) (AppleUserChannel, error)
	// Find returns the device's open channel of a user; ErrNotFound when
	// there is none.
	Find(ctx context.Context, tenantID, deviceID string, userIndex []byte) (AppleUserChannel, error)
	// List returns the device's user channels, open and checked out, oldest
	// first.
	List(ctx context.Context, tenantID, deviceID string) ([]AppleUserChannel, error)
	// CountOpen counts the device's channels not checked out.
	CountOpen(ctx context.Context, tenantID, deviceID string) (int, error)
	// Touch writes the last check-in time of an open channel.
	Touch(ctx context.Context, tenantID, id string, at time.Time) error
	// CheckOut closes one channel for good, its token and indexes dropped;
	// CheckOutDevice closes all of a device's. Closing a closed channel is
	// no error.
	CheckOut(ctx context.Context, tenantID, id string, at time.Time) error
	CheckOutDevice(ctx context.Context, tenantID, deviceID string, at time.Time) error
	// ListOpen returns up to limit of the tenant's open channels, every
	// device's, in (DeviceID, ID) order after the channel of afterDevice and
	// afterID (both empty: from the first).
	ListOpen(ctx context.Context, tenantID, afterDevice, afterID string, limit int) ([]AppleUserChannel, error)
	// ForgetAccounts drops the account indexes of a device's channels and
	// returns how many it dropped; ForgetAccount drops one channel's.
	ForgetAccounts(ctx context.Context, tenantID, deviceID string) (int, error)
	ForgetAccount(ctx context.Context, tenantID, id string) error
	// SchedulePush, ClaimPushes and PushDone are AppleChannelStore's, for
	// user channels by ID.
	SchedulePush(ctx context.Context, tenantID string, ids []string, at time.Time) (int, error)
	ClaimPushes(ctx context.Context, now, until time.Time, limit int) ([]AppleUserChannel, error)
	PushDone(ctx context.Context, tenantID, id string, claimed, next time.Time, attempts int, dead *DeadToken) error
}

// CertificateExpiryCount is a tenant's count of device identities near or past
// their expiry.
type CertificateExpiryCount struct {
	TenantID string
	Expiring int // expiring before the window's end, expired ones included
	Expired  int
}

// ChannelPresence is a channel with its device's state and whether a
// command waits for the device.
type ChannelPresence struct {
	Channel     AppleChannel
	DeviceState string
	LastSeenAt  time.Time
	// Pending: a command is queued, sent or answered "not now".
	Pending bool
}

// Command states.
const (
	CommandQueued       = "queued"
	CommandSent         = "sent"
	CommandAcknowledged = "acknowledged"
	CommandError        = "error"
	CommandNotNow       = "notnow"
	CommandCancelled    = "cancelled"
)

// CommandOpen reports whether a command in state is still to be answered.
func CommandOpen(state string) bool {
	return state == CommandQueued || state == CommandSent || state == CommandNotNow
}

// DescribedError is a failed command whose error chain holds a description,
// with the ownership class of its device (empty when the device is gone).
type DescribedError struct {
	ID, TenantID, Ownership, ErrorChain string
	CompletedAt                         time.Time
}

// Command is one queued MDM command. Payload is the command plist sealed
// under the master key: commands can carry secrets (a lock PIN).
type Command struct {
	ID       string // the CommandUUID
	TenantID string
	DeviceID string
	// UserChannel is the ID of the user channel the command is for; empty
	// for the device channel.
	UserChannel string
	RequestType string
	// Queries are the keys a DeviceInformation command asks for (nil for
	// other commands), kept beside the sealed payload so that its result is
	// held to them without opening the payload. Key names only, no values;
	// none may contain a comma.
	Queries     []string
	Payload     []byte
	State       string
	RequestedBy string
	// Reason is why the admin asked for it ("" when none was given).
	Reason   string
	Attempts int
	// Unanswered counts the deliveries since the last answer (NotNow is an
	// answer) that the device did not answer: 0 on a first delivery.
	Unanswered int
	// ErrorChain is JSON: the device's, from an Error status, or
	// Steward's own note on an acknowledged one (a locate without a fix).
	ErrorChain  string
	CreatedAt   time.Time
	SentAt      time.Time
	CompletedAt time.Time
}

// CommandStore is the per-device command queue, ordered by ID (creation).
type CommandStore interface {
	// Enqueue inserts commands; ErrConflict when one of their channels (a
	// device's, or a user channel) already holds maxQueued open commands:
	// each queue is bounded.
	Enqueue(ctx context.Context, cmds []Command, maxQueued int) error
	// EnqueueCounted is Enqueue for a caller that already took LockQueues
	// for every device of cmds and then read open, their OpenCounts, in
	// this transaction: the bound is checked against open instead of
	// locking and counting again. Only Enqueue adds open commands and it
	// waits for the lock, so counts read under it stay an upper bound until
	// the transaction ends. Counts of user channels are still read here.
	EnqueueCounted(ctx context.Context, cmds []Command, maxQueued int, open map[string]int) error
	// LockQueues holds the command queues of the devices (device and user
	// channels) against other enqueues until the transaction ends, so that
	// two enqueues at once cannot both count room for the last commands.
	// Enqueue takes it; a caller that counts open commands before it, to
	// skip full queues, takes it first and then uses EnqueueCounted.
	LockQueues(ctx context.Context, tenantID string, deviceIDs []string) error
	// OpenCounts returns how many open commands each of the devices holds
	// on its device channel (devices with none are absent).
	OpenCounts(ctx context.Context, tenantID string, deviceIDs []string) (map[string]int, error)
	// OpenOnChannel returns how many open commands a channel holds: a user
	// channel, or with userChannel empty the device channel.
	OpenOnChannel(ctx context.Context, tenantID, deviceID, userChannel string) (int, error)
	Get(ctx context.Context, tenantID, id string) (Command, error)
	// SendNext marks the oldest open command of the device's channel (the
	// device channel when userChannel is empty, else that user channel)
	// sent at at (one more attempt; one more unanswered delivery if it was
	// sent already, else none) and returns it as stored: queued or sent,
	// never one the device put off (notnow) in this exchange;
	// ErrNotFound when none. idle starts an exchange (the device said
	// Idle, so it is ready again): every command it put off before is
	// queued again first, so that each is offered again in the exchange,
	// not only the oldest.
	SendNext(ctx context.Context, tenantID, deviceID, userChannel string, idle bool, at time.Time) (Command, error)
	// PutOff records a NotNow for delivery number delivery (the Attempts
	// the answer was read with): the command, still sent, becomes notnow,
	// its counters as they are. ErrNotFound, and nothing changes, when it is
	// no longer sent or was delivered again since: the NotNow then answers
	// an earlier delivery, and the device still owes the later one.
	PutOff(ctx context.Context, tenantID, id string, delivery int) error
	// Finish finishes a command still open (a device's answer, or Steward
	// cancelling one it may have delivered): State, ErrorChain and
	// CompletedAt, without its payload, its delivery counters as the last
	// delivery left them (a delivery since c was read still counts).
	// ErrNotFound, and nothing changes, when it was finished since;
	// ErrConflict when c.State is an open state.
	Finish(ctx context.Context, c Command) error
	// FinishDelivery is Finish only while the command is still at delivery
	// number delivery (the Attempts it was read with): for a caller whose
	// reason to finish it holds only if no node has delivered it since (one
	// giving up on a payload it could not open). ErrNotFound, and nothing
	// changes, when it was finished or delivered again since.
	FinishDelivery(ctx context.Context, c Command, delivery int) error
	// Update writes State, Attempts, Unanswered, ErrorChain, SentAt and
	// CompletedAt of a command still open, as c has them. It is for a
	// command the transaction holds: claimed by SendNext in it (on
	// PostgreSQL its row stays locked until commit; SQLite has one writer),
	// and failed or withheld instead of sent. Update checks only that the
	// command is open, so c read with Get, which locks nothing, would write
	// back the counters it read over a delivery another node made since:
	// such a caller finishes it with Finish or FinishDelivery instead. A
	// finished command's payload is dropped: it is never sent again, and it
	// may hold a secret. A command finished since it was read (answered,
	// cancelled) gives ErrNotFound and stays as it is: an answer cannot
	// reopen or re-finish it.
	Update(ctx context.Context, c Command) error
	// Cancel finishes one command not yet delivered (queued, or answered
	// "not now") as cancelled at at, with errorChain and without its
	// payload, and returns it; ErrNotFound when no such command is in one
	// of those states.
	Cancel(ctx context.Context, tenantID, id, errorChain string, at time.Time) (Command, error)
	// CancelOpen finishes the device's open commands, on every channel, as
	// cancelled at at, with errorChain, drops their payloads, and returns
	// them. CancelOpenForUser does the same for one user channel's.
	CancelOpen(ctx context.Context, tenantID, deviceID string, errorChain string, at time.Time) ([]Command, error)
	// CancelOpenExcept is CancelOpen leaving command keepID as it is (every
	// open command goes when keepID is empty).
	CancelOpenExcept(ctx context.Context, tenantID, deviceID, keepID, errorChain string, at time.Time) ([]Command, error)
	CancelOpenForUser(ctx context.Context, tenantID, deviceID, userChannel, errorChain string, at time.Time) ([]Command, error)
	// SetErrorChain replaces a finished command's error chain (an erasure
	// strips the device's descriptions from it); ErrNotFound when there is
	// no such finished command.
	SetErrorChain(ctx context.Context, tenantID, id, errorChain string) error
	// DescribedErrors walks every tenant's commands in ID order, for sweeps
	// that must reach them all in bounded steps: it reads up to limit
	// commands with an ID after after and returns, of those, the failed
	// ones whose error chain holds a description, and the last ID read
	// (empty when none was left to read).
	DescribedErrors(ctx context.Context, after string, limit int) ([]DescribedError, string, error)
	List(ctx context.Context, tenantID, deviceID string, p Page) ([]Command, error)
	// PurgeBefore deletes up to limit commands that finished before cutoff.
	PurgeBefore(ctx context.Context, cutoff time.Time, limit int) ([]PurgeCount, error)
}
