package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/mail"
	"strings"
	"sync/atomic"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/store"
)

// Service is the privacy core's API for the HTTP layer, the CLI and jobs.
type Service struct {
	st              store.Store
	vault           *keys.Vault
	gate            *Gate
	signer          *audit.Signer
	log             *slog.Logger
	now             func() time.Time
	left            []DeviceLeftHook
	departing       []DepartingHook
	erased          []DeviceErasedHook
	forget          []SubjectErasedHook
	accountReplaced []AccountReplacedHook
	exported        []DeviceExportHook
	exportedAudit   []ExportAuditFilter
	personal        []SubjectExportHook
	wipeBack        []FullWipeTakenBackHook
	tellOff         []TellToLeaveHook
	policy          []PolicyChangedHook
	minters         map[string]KeyMinter
	mailOn          atomic.Bool // an outbox delivers this server's mail
}

// DeviceLeftHook runs inside the transaction that takes a device out of
// management (deprovisioning, retirement, wipe, CheckOut), after its
// personal data is erased; d is the device as it now is. An error undoes
// the whole departure.
type DeviceLeftHook func(ctx context.Context, q store.Queries, d store.Device) error

// OnDeviceLeft adds a hook, before serving starts: a protocol adapter
// stops talking to a device that left.
func (s *Service) OnDeviceLeft(h DeviceLeftHook) { s.left = append(s.left, h) }

// DepartingHook runs inside the same transaction, before every
// DeviceLeftHook: the device's commands are still as it left them (no
// adapter has cancelled them yet, but for a device that removed its
// management profile itself, which it could only do while running). d is the device as it now is, and
// serialIndex the blind index of the serial number it had until this
// departure (nil if none, or if it went earlier, when the device started
// leaving), for what must still find the hardware once its record is gone
// (a Mac's Find My PIN). An error undoes the whole departure.
type DepartingHook func(ctx context.Context, q store.Queries, d store.Device, serialIndex []byte) error

// OnDeparting adds a hook, before serving starts.
func (s *Service) OnDeparting(h DepartingHook) { s.departing = append(s.departing, h) }

// DeviceErasedHook runs inside the transaction that erases a device's
// personal data (deprovisioning, or erasing its person, which may leave a
// corporate device managed), so that a protocol adapter erases what it
// keeps of the device's people; it counts what it removed in rows, for the
// deletion certificate. An error undoes the erasure.
type DeviceErasedHook func(ctx context.Context, q store.Queries, d store.Device, rows map[string]int) error

// OnDeviceErased adds a hook, before serving starts.
func (s *Service) OnDeviceErased(h DeviceErasedHook) { s.erased = append(s.erased, h) }

// SubjectErasedHook runs inside the transaction that erases person sub,
// while their profile p can still be read, so that a protocol adapter
// forgets what it derived from the person's identifiers on any device, not
// only those assigned to them (a Shared iPad, a colleague's Mac); it counts
// what it removed in rows. It does not run when the profile cannot be read
// any more (an erasure re-applied after a restore). An error undoes the
// erasure.
type SubjectErasedHook func(ctx context.Context, q store.Queries, sub store.Subject, p Profile, rows map[string]int) error

// OnSubjectErased adds a hook, before serving starts.
func (s *Service) OnSubjectErased(h SubjectErasedHook) { s.forget = append(s.forget, h) }

// AccountReplacedHook runs inside the transaction that replaces person
// sub's Managed Apple Account, with the account given up ("" when the
// e-mail was the account), so that a protocol adapter forgets what it
// derived from it while it still names the person alone (the name may
// become another person's), or refuses a change its devices cannot take.
// An error undoes the change.
type AccountReplacedHook func(ctx context.Context, q store.Queries, sub store.Subject, account string) error

// OnAccountReplaced adds a hook, before serving starts.
func (s *Service) OnAccountReplaced(h AccountReplacedHook) {
	s.accountReplaced = append(s.accountReplaced, h)
}

// DeviceExportHook returns what a protocol adapter holds about device d
// besides its inventory, for its person's data export; it runs inside the
// export's read.
type DeviceExportHook func(ctx context.Context, q store.Queries, d store.Device) ([]ExportRecord, error)

// OnDeviceExport adds a hook, before serving starts.
func (s *Service) OnDeviceExport(h DeviceExportHook) { s.exported = append(s.exported, h) }

// ExportAuditFilter says whether an audit entry about device d goes into
// the data export of d's person: a protocol adapter leaves out the entries
// about the device's other users.
type ExportAuditFilter func(e store.AuditEntry, d store.Device) bool

// OnExportAudit adds a filter, before serving starts.
func (s *Service) OnExportAudit(f ExportAuditFilter) { s.exportedAudit = append(s.exportedAudit, f) }

// SubjectExportPart is what a protocol adapter holds about a person apart from
// any one device (enrolment links, say), for their data export, and the
// targets of the audit entries about those records.
type SubjectExportPart struct {
	Records      []ExportRecord
	AuditTargets []string
	// AuditAbout picks entries about another record that concern the
	// person (a command to their account on a colleague's device).
	AuditAbout []AuditSelection
}

// AuditSelection is the audit entries about Target that Keep accepts.
type AuditSelection struct {
	Target string
	Keep   func(store.AuditEntry) bool
}

// SubjectExportHook returns a SubjectExportPart; it runs inside the
// export's read.
type SubjectExportHook func(ctx context.Context, q store.Queries, tenantID, subjectID string) (SubjectExportPart, error)

// OnSubjectExport adds a hook, before serving starts.
func (s *Service) OnSubjectExport(h SubjectExportHook) { s.personal = append(s.personal, h) }

// FullWipeTakenBackHook runs inside the transaction of a consent that takes
// back the permission to erase the person's personal devices of class o
// (deviceID names one, or is empty for all), so that the protocol adapter
// keeping that permission per enrolment withdraws it there. An error
// undoes the consent.
type FullWipeTakenBackHook func(ctx context.Context, q store.Queries, tenantID, subjectID string, o Ownership, deviceID string) error

// OnFullWipeTakenBack adds a hook, before serving starts.
func (s *Service) OnFullWipeTakenBack(h FullWipeTakenBackHook) { s.wipeBack = append(s.wipeBack, h) }

// KeyMinter mints, inside the outbox's transaction as the mail leaves, the
// key a notification of its kind carries in place of KeyPlaceholder, so
// that the key exists only in that mail. ErrLinkClosed: what the key would
// open closed before the mail went out, and the notification fails.
type KeyMinter func(ctx context.Context, q store.Queries, n store.Notification) (string, error)

// ErrLinkClosed is a KeyMinter's answer for a key nobody may have any more.
var ErrLinkClosed = errors.New("the link it carried was closed before the mail went out")

// EnableMail says this server delivers mail: an outbox runs (the SMTP
// settings are set). Without it a key that only a mail would carry is
// refused rather than queued for ever.
func (s *Service) EnableMail() { s.mailOn.Store(true) }

// OnMintKey sets the minter of a notification kind, before serving starts.
func (s *Service) OnMintKey(kind string, m KeyMinter) {
	if s.minters == nil {
		s.minters = map[string]KeyMinter{}
	}
	s.minters[kind] = m
}

// TellToLeaveHook runs inside the transaction of a withdrawn consent, after
// personal device d's data is erased and before it changes state (d is
// still enrolled): a protocol adapter that can tell the device to remove
// its management profile queues that removal and reports true; the device
// is then leaving until it answers. One that cannot reports false, and the
// device is deprovisioned at once. An error undoes the withdrawal.
type TellToLeaveHook func(ctx context.Context, q store.Queries, d store.Device, reason string, actor iam.Actor) (bool, error)

// OnTellToLeave adds a hook, before serving starts.
func (s *Service) OnTellToLeave(h TellToLeaveHook) { s.tellOff = append(s.tellOff, h) }

// PolicyChangedHook runs inside the transaction that applies a change of
// the collection policy from old to next, so that a protocol adapter can
// forget what it keeps outside the gate and next no longer allows. An
// error undoes the change.
type PolicyChangedHook func(ctx context.Context, q store.Queries, tenantID string, old, next Policy) error

// OnPolicyChanged adds a hook, before serving starts.
func (s *Service) OnPolicyChanged(h PolicyChangedHook) { s.policy = append(s.policy, h) }

// NewService wires the privacy core.
func NewService(st store.Store, vault *keys.Vault, signer *audit.Signer, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{st: st, vault: vault, gate: &Gate{Vault: vault}, signer: signer, log: log, now: time.Now}
	s.OnMintKey(PortalAccessKind, func(ctx context.Context, q store.Queries, n store.Notification) (string, error) {
		key, _, err := s.mintPortalToken(ctx, q, n.TenantID, n.SubjectID, DefaultPortalTTL)
		return key, err
	})
	return s
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now; s.vault.SetClock(now) }

// Gate returns the privacy gate every device adapter must use.
func (s *Service) Gate() *Gate { return s.gate }

// Vault returns the key vault.
func (s *Service) Vault() *keys.Vault { return s.vault }

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Profile is what Steward holds about a person beyond their devices. It is
// stored encrypted under the person's data key.
type Profile struct {
	Email      string `json:"email"`
	Name       string `json:"name,omitempty"`
	Department string `json:"department,omitempty"`
	// ManagedAppleID is the person's Managed Apple Account when it is not
	// their work e-mail, as when the organisation's accounts are not
	// federated with its directory.
	ManagedAppleID string `json:"managed_apple_id,omitempty"`
}

// AppleAccount is the Managed Apple Account the person signs in to a User
// Enrollment with, and that its profile names.
func (p Profile) AppleAccount() string {
	if p.ManagedAppleID != "" {
		return p.ManagedAppleID
	}
	return p.Email
}

// AppleAccounts are the account names the person's devices may know them
// by: the e-mail and, when it differs, the Managed Apple Account.
func (p Profile) AppleAccounts() []string {
	if p.ManagedAppleID == "" || p.ManagedAppleID == p.Email {
		return []string{p.Email}
	}
	return []string{p.Email, p.ManagedAppleID}
}

// SubjectInput creates a data subject.
type SubjectInput struct {
	Email      string `json:"email"`
	Name       string `json:"name"`
	Department string `json:"department"`
	Locale     string `json:"locale"`
	// ManagedAppleID: only when the person's Managed Apple Account is not
	// their e-mail address.
	ManagedAppleID string `json:"managed_apple_id,omitempty"`
}

// SubjectUpdate changes what is known of a person; absent fields stay as
// they are, and an empty managed_apple_id goes back to the e-mail.
type SubjectUpdate struct {
	Name           *string `json:"name,omitempty"`
	Department     *string `json:"department,omitempty"`
	ManagedAppleID *string `json:"managed_apple_id,omitempty"`
}

// normaliseAppleAccount validates a Managed Apple Account, which has the
// form of an e-mail address; empty stays empty.
func normaliseAppleAccount(id string) (string, error) {
	if strings.TrimSpace(id) == "" {
		return "", nil
	}
	norm, err := NormaliseEmail(id)
	if err != nil {
		return "", apperr.Invalid("managed_apple_id %q is not an account name like name@example.com", id)
	}
	return norm, nil
}

func checkProfileLengths(name, department string) error {
	if len(name) > 200 || len(department) > 200 {
		return apperr.Invalid("name and department are limited to 200 characters")
	}
	return nil
}

// NormaliseEmail lower-cases and validates an address for blind indexing.
func NormaliseEmail(e string) (string, error) {
	a, err := mail.ParseAddress(strings.TrimSpace(e))
	if err != nil || a.Name != "" || !strings.Contains(a.Address, "@") {
		return "", apperr.Invalid("%q is not a plain e-mail address", e)
	}
	return strings.ToLower(a.Address), nil
}

func profileContext(tenantID, keyID, subjectID string) keys.FieldContext {
	return keys.FieldContext{TenantID: tenantID, KeyID: keyID, Row: subjectID, Field: "subject.profile"}
}

// CreateSubject registers a person; their e-mail is kept only as ciphertext
// and a blind index.
func (s *Service) CreateSubject(ctx context.Context, tenantID string, in SubjectInput, actor iam.Actor) (store.Subject, error) {
	email, err := NormaliseEmail(in.Email)
	if err != nil {
		return store.Subject{}, err
	}
	if err := checkProfileLengths(in.Name, in.Department); err != nil {
		return store.Subject{}, err
	}
	appleID, err := normaliseAppleAccount(in.ManagedAppleID)
	if err != nil {
		return store.Subject{}, err
	}
	if appleID == email {
		appleID = "" // the e-mail already is the account
	}
	locale := in.Locale
	if locale == "" {
		locale = "en"
	}
	if !validLanguage(locale) {
		return store.Subject{}, apperr.Invalid("locale %q is not a language tag like en or de", locale)
	}
	now := s.clock()
	sub := store.Subject{ID: store.NewID(), TenantID: tenantID, Locale: locale, State: store.SubjectActive, CreatedAt: now, UpdatedAt: now}
	sub.Pseudonym = "person-" + sub.ID[len(sub.ID)-8:]
	err = s.st.Tx(ctx, func(q store.Queries) error {
		if _, err := q.Tenants().Get(ctx, tenantID); err != nil {
			return err
		}
		if sub.EmailIndex, err = s.vault.BlindIndex(ctx, q, tenantID, "user.email", email); err != nil {
			return err
		}
		if sub.AppleIDIndex, err = s.appleIDIndex(ctx, q, tenantID, appleID); err != nil {
			return err
		}
		if sub.KeyID, err = s.vault.EnsureDataKey(ctx, q, tenantID, keys.SubjectOwner(sub.ID), sub.ID); err != nil {
			return err
		}
		plain, err := json.Marshal(Profile{Email: email, Name: in.Name, Department: in.Department, ManagedAppleID: appleID})
		if err != nil {
			return err
		}
		if sub.Profile, err = s.vault.Session(ctx, q).Encrypt(profileContext(tenantID, sub.KeyID, sub.ID), plain); err != nil {
			return err
		}
		if err := q.Subjects().Create(ctx, sub); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return errAccountNameTaken
			}
			return err
		}
		return audit.Append(ctx, q, actor.Entry(tenantID, "subject.create", "subject", sub.ID, audit.OutcomeSuccess))
	})
	return sub, err
}

// UpdateSubject changes a person's name, department or Managed Apple
// Account. Their e-mail stays: it is the person's blind-indexed identity.
// The audit names the fields changed, never their values.
func (s *Service) UpdateSubject(ctx context.Context, tenantID, id string, in SubjectUpdate, actor iam.Actor) (store.Subject, error) {
	var appleID string
	if in.ManagedAppleID != nil {
		var err error
		if appleID, err = normaliseAppleAccount(*in.ManagedAppleID); err != nil {
			return store.Subject{}, err
		}
	}
	var sub store.Subject
	err := s.st.Tx(ctx, func(q store.Queries) error {
		var err error
		if sub, err = q.Subjects().Lock(ctx, tenantID, id); errors.Is(err, store.ErrNotFound) {
			return apperr.NotFound("person")
		} else if err != nil {
			return err
		}
		if sub.State == store.SubjectErased {
			return apperr.Conflict("the person was erased; nothing is kept about them to change")
		}
		p, err := s.OpenProfile(ctx, q, sub)
		if err != nil {
			return err
		}
		var changed []string
		set := func(field string, dst *string, v string) {
			if *dst != v {
				*dst = v
				changed = append(changed, field)
			}
		}
		if in.Name != nil {
			set("name", &p.Name, *in.Name)
		}
		if in.Department != nil {
			set("department", &p.Department, *in.Department)
		}
		if in.ManagedAppleID != nil {
			if appleID == p.Email {
				appleID = "" // the e-mail already is the account
			}
			if replaced := p.ManagedAppleID; replaced != appleID {
				set("managed_apple_id", &p.ManagedAppleID, appleID)
				if sub.AppleIDIndex, err = s.appleIDIndex(ctx, q, tenantID, appleID); err != nil {
					return err
				}
				if err := s.accountGivenUp(ctx, q, sub, replaced); err != nil {
					return err
				}
			}
		}
		if err := checkProfileLengths(p.Name, p.Department); err != nil {
			return err
		}
		if len(changed) == 0 {
			return nil
		}
		plain, err := json.Marshal(p)
		if err != nil {
			return err
		}
		if sub.Profile, err = s.vault.Session(ctx, q).Encrypt(profileContext(tenantID, sub.KeyID, sub.ID), plain); err != nil {
			return err
		}
		sub.UpdatedAt = s.clock()
		if err := q.Subjects().Update(ctx, sub); errors.Is(err, store.ErrConflict) {
			return errAccountNameTaken
		} else if err != nil {
			return err
		}
		e := actor.Entry(tenantID, "subject.update", "subject", sub.ID, audit.OutcomeSuccess)
		e.Details = map[string]any{"fields": changed}
		return audit.Append(ctx, q, e)
	})
	return sub, err
}

// accountGivenUp tells the AccountReplacedHooks of the Managed Apple
// Account sub gave up ("" when the e-mail was the account): while it is
// still theirs, what derives from it goes before the name can become
// someone else's.
func (s *Service) accountGivenUp(ctx context.Context, q store.Queries, sub store.Subject, account string) error {
	for _, h := range s.accountReplaced {
		if err := h(ctx, q, sub, account); err != nil {
			return err
		}
	}
	return nil
}

// errAccountNameTaken: one account name, as an e-mail or a Managed Apple
// Account, names one person of a tenant; erasing or enrolling one must not
// reach another.
var errAccountNameTaken = apperr.Conflict("another person of this tenant has this e-mail address or Managed Apple Account")

// appleIDIndex is the blind index of a Managed Apple Account, in the
// e-mail's namespace so that the two are compared; nil for none.
func (s *Service) appleIDIndex(ctx context.Context, q store.Queries, tenantID, appleID string) ([]byte, error) {
	if appleID == "" {
		return nil, nil
	}
	return s.vault.BlindIndex(ctx, q, tenantID, "user.email", appleID)
}

// FindSubjectByEmail looks a person up through the blind index.
func (s *Service) FindSubjectByEmail(ctx context.Context, tenantID, email string) (store.Subject, error) {
	norm, err := NormaliseEmail(email)
	if err != nil {
		return store.Subject{}, err
	}
	q := s.st.Read()
	idx, err := s.vault.BlindIndex(ctx, q, tenantID, "user.email", norm)
	if err != nil {
		return store.Subject{}, err
	}
	sub, err := q.Subjects().GetByEmailIndex(ctx, tenantID, idx)
	if errors.Is(err, store.ErrNotFound) {
		return sub, apperr.NotFound("person")
	}
	return sub, err
}

// AccountHolder finds, within q, the person of the tenant an account name
// belongs to: their e-mail or their Managed Apple Account, both indexed in
// the e-mail's namespace. known is false when it is nobody's: not an
// address (a Mac's local short name), no one's here, or an erased
// person's, whose indexes are gone.
//
// Only a plain address counts, as a device sends it: a form only the mail
// parser accepts ("<anna@x>", a comment) could never name a channel. The
// person is locked (Subjects().Lock) and checked again, so an erasure or a
// change of account racing the question either finished first, and they
// are nobody, or waits for the transaction (RecordAccess).
func (s *Service) AccountHolder(ctx context.Context, q store.Queries, tenantID, account string) (sub store.Subject, known bool, err error) {
	norm, err := NormaliseEmail(account)
	if err != nil || norm != strings.ToLower(strings.TrimSpace(account)) {
		return store.Subject{}, false, nil
	}
	idx, err := s.vault.BlindIndex(ctx, q, tenantID, "user.email", norm)
	if err != nil {
		return store.Subject{}, false, err
	}
	found, err := q.Subjects().GetByAccountIndex(ctx, tenantID, idx)
	if errors.Is(err, store.ErrNotFound) {
		return store.Subject{}, false, nil
	}
	if err != nil {
		return store.Subject{}, false, err
	}
	sub, err = q.Subjects().Lock(ctx, tenantID, found.ID)
	if errors.Is(err, store.ErrNotFound) || err == nil && (sub.State == store.SubjectErased ||
		!bytes.Equal(sub.EmailIndex, idx) && !bytes.Equal(sub.AppleIDIndex, idx)) {
		return store.Subject{}, false, nil // erased, or renamed, meanwhile
	}
	return sub, err == nil, err
}

// Subject returns a person, as a 404 when absent.
func (s *Service) Subject(ctx context.Context, q store.Queries, tenantID, id string) (store.Subject, error) {
	sub, err := q.Subjects().Get(ctx, tenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return sub, apperr.NotFound("person")
	}
	return sub, err
}

// OpenProfile decrypts a person's profile; ErrKeyDestroyed after erasure.
func (s *Service) OpenProfile(ctx context.Context, q store.Queries, sub store.Subject) (Profile, error) {
	var p Profile
	if sub.State == store.SubjectErased || sub.Profile == nil {
		return p, keys.ErrKeyDestroyed
	}
	plain, err := s.vault.Session(ctx, q).Decrypt(profileContext(sub.TenantID, sub.KeyID, sub.ID), sub.Profile)
	if err != nil {
		return p, err
	}
	return p, json.Unmarshal(plain, &p)
}

// DeviceInput registers a device (enrolment protocols call this; admins can
// pre-register).
type DeviceInput struct {
	SubjectID string `json:"subject_id"`
	Ownership string `json:"ownership"`
	Platform  string `json:"platform"`
	// PlatformUnknown: the enrolment protocol could not tell the platform
	// yet (Platform empty); it sets it once the device names itself.
	PlatformUnknown bool `json:"-"`
}

// Platforms Steward knows.
var Platforms = []string{"ios", "ipados", "macos", "windows", "linux", "android"}

// RegisterDevice creates a device in state pending.
func (s *Service) RegisterDevice(ctx context.Context, tenantID string, in DeviceInput, actor iam.Actor) (store.Device, error) {
	var d store.Device
	err := s.st.Tx(ctx, func(q store.Queries) error {
		var err error
		d, err = s.RegisterDeviceIn(ctx, q, tenantID, in, actor)
		return err
	})
	return d, err
}

// RegisterDeviceIn is RegisterDevice inside the caller's transaction (MDM
// enrolment creates the device together with its channel).
func (s *Service) RegisterDeviceIn(ctx context.Context, q store.Queries, tenantID string, in DeviceInput, actor iam.Actor) (store.Device, error) {
	if !Ownership(in.Ownership).Valid() {
		return store.Device{}, apperr.Invalid("unknown ownership class %q (want one of %v)", in.Ownership, Ownerships)
	}
	if in.PlatformUnknown != (in.Platform == "") || in.Platform != "" && !contains(Platforms, in.Platform) {
		return store.Device{}, apperr.Invalid("unknown platform %q (want one of %v)", in.Platform, Platforms)
	}
	now := s.clock()
	d := store.Device{ID: store.NewID(), TenantID: tenantID, SubjectID: in.SubjectID, Ownership: in.Ownership,
		Platform: in.Platform, State: store.DevicePending, CreatedAt: now, UpdatedAt: now}
	if _, err := q.Tenants().Get(ctx, tenantID); err != nil {
		return d, err
	}
	if in.SubjectID != "" {
		sub, err := s.Subject(ctx, q, tenantID, in.SubjectID)
		if err != nil {
			return d, err
		}
		if sub.State == store.SubjectErased {
			return d, apperr.Conflict("that person was erased")
		}
	}
	var err error
	if d.KeyID, err = s.vault.EnsureDataKey(ctx, q, tenantID, keys.DeviceOwner(d.ID), d.SubjectID); err != nil {
		return d, err
	}
	if err := q.Devices().Create(ctx, d); err != nil {
		return d, err
	}
	e := actor.Entry(tenantID, "device.register", "device", d.ID, audit.OutcomeSuccess)
	e.Details = map[string]any{"ownership": d.Ownership, "platform": d.Platform}
	return d, audit.Append(ctx, q, e)
}

// Device returns a device, as a 404 when absent.
func (s *Service) Device(ctx context.Context, q store.Queries, tenantID, id string) (store.Device, error) {
	d, err := q.Devices().Get(ctx, tenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return d, apperr.NotFound("device")
	}
	return d, err
}

// Ingest passes a device report through the gate and stores it, with the
// device's check-in time, in one transaction.
func (s *Service) Ingest(ctx context.Context, r Report) (Admitted, error) {
	var out Admitted
	err := s.st.Tx(ctx, func(q store.Queries) error {
		var err error
		if out, err = s.gate.Admit(ctx, q, r); err != nil {
			return err
		}
		at := r.At
		if at.IsZero() {
			at = s.clock()
		}
		return q.Devices().Touch(ctx, r.TenantID, r.DeviceID, at)
	})
	if errors.Is(err, store.ErrNotFound) {
		return out, apperr.NotFound("device")
	}
	return out, err
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// validLanguage accepts simple BCP 47 tags: "en", "de", "pt-BR".
func validLanguage(tag string) bool {
	if len(tag) < 2 || len(tag) > 12 {
		return false
	}
	for i, r := range tag {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || (i > 1 && (r == '-' || r >= '0' && r <= '9'))
		if !ok {
			return false
		}
	}
	return true
}

// FindDevicesBySerial finds devices through the serial number's blind index.
func (s *Service) FindDevicesBySerial(ctx context.Context, tenantID, serial string, p store.Page) ([]store.Device, error) {
	idx, err := s.SerialIndex(ctx, tenantID, serial)
	if err != nil {
		return nil, err
	}
	return s.st.Read().Devices().List(ctx, tenantID, store.DeviceFilter{SerialIndex: idx, Page: p})
}

// SerialIndex is the tenant's blind index of a serial number, as devices
// are indexed by it.
func (s *Service) SerialIndex(ctx context.Context, tenantID, serial string) ([]byte, error) {
	return s.vault.BlindIndex(ctx, s.st.Read(), tenantID, "device.serial_number", NormaliseIdentifier(serial))
}
