// Package mdm is Steward's Apple MDM service: enrolment, check-in and the
// command queue. The wire format lives in internal/apple/mdmproto; this
// package turns it into domain calls and passes every datum through the
// privacy gate.
package mdm

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/iam/credential"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// Enrolment link lifetimes.
const (
	DefaultEnrolmentTTL = 7 * 24 * time.Hour
	MaxEnrolmentTTL     = 30 * 24 * time.Hour
)

// EnrolmentAccepted is store.EnrolmentAccepted, the state after the
// employee accepted the notice.
const EnrolmentAccepted = store.EnrolmentAccepted

// EnrolmentInput creates an enrolment.
type EnrolmentInput struct {
	Ownership string `json:"ownership"`
	SubjectID string `json:"subject_id,omitempty"`
	GroupID   string `json:"group_id,omitempty"`
	TTLHours  int    `json:"ttl_hours,omitempty"`
	// Notify mails the link to the person (subject_id), minted as the mail
	// leaves: nobody else ever holds it, and only such a link asks the
	// person of a personal device whether a full wipe is allowed.
	Notify bool `json:"notify,omitempty"`
}

// CreateEnrolment makes an enrolment link for one device (which may try
// again after a failed installation: retry.go). The ownership class decides
// what will be collected; the employee must accept that class's current
// notice before the profile is theirs.
func (s *Service) CreateEnrolment(ctx context.Context, tenantID string, in EnrolmentInput, actor iam.Actor) (store.Enrolment, string, error) {
	o := privacy.Ownership(in.Ownership)
	if !o.Valid() {
		return store.Enrolment{}, "", apperr.Invalid("unknown ownership class %q (want one of %v)", in.Ownership, privacy.Ownerships)
	}
	if o.PersonallyOwned() && in.SubjectID == "" {
		return store.Enrolment{}, "", apperr.Invalid("a %s enrolment is for a person: give subject_id", o)
	}
	if in.Notify && in.SubjectID == "" {
		return store.Enrolment{}, "", apperr.Invalid("a mailed enrolment link is for a person: give subject_id").With("field", "subject_id")
	}
	ttl := DefaultEnrolmentTTL
	if in.TTLHours != 0 {
		if in.TTLHours < 1 || in.TTLHours > int(MaxEnrolmentTTL/time.Hour) {
			return store.Enrolment{}, "", apperr.Invalid("ttl_hours must be from 1 to %d", int(MaxEnrolmentTTL/time.Hour))
		}
		ttl = time.Duration(in.TTLHours) * time.Hour
	}
	secret, hash, err := credential.New(credential.EnrolmentLink)
	if err != nil {
		return store.Enrolment{}, "", err
	}
	now := s.clock()
	e := store.Enrolment{ID: store.NewID(), TenantID: tenantID, Ownership: string(o), SubjectID: in.SubjectID, GroupID: in.GroupID,
		UserEnrollment: o == privacy.UserEnrolled, SecretHash: hash, State: store.EnrolmentOpen, CreatedBy: actor.Ref(),
		CreatedAt: now, ExpiresAt: now.Add(ttl), LinkMailed: in.Notify}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		// Read shared: the policy kept for the version the enrolment is
		// made under stays while it is pending.
		settings, err := privacy.LoadSettingsShared(ctx, q, tenantID, now)
		if err != nil {
			return err
		}
		if e.NoticeVersion = settings.NoticeVersions[o]; e.NoticeVersion == 0 {
			return apperr.Conflict("publish a privacy notice for %s devices first: the employee accepts it before enrolling", o)
		}
		if in.SubjectID != "" {
			sub, err := q.Subjects().Get(ctx, tenantID, in.SubjectID)
			if errors.Is(err, store.ErrNotFound) {
				return apperr.NotFound("person")
			}
			if err != nil {
				return err
			}
			if sub.State != store.SubjectActive {
				return apperr.Conflict("that person was erased")
			}
		}
		if err := q.Enrolments().Create(ctx, e); err != nil {
			return err
		}
		if e.LinkMailed {
			if err := s.queueEnrolmentMail(ctx, q, e); err != nil {
				return err
			}
		}
		r := actor.Entry(tenantID, "enrolment.create", "enrolment", e.ID, audit.OutcomeSuccess)
		r.Details = map[string]any{"ownership": e.Ownership, "notice_version": e.NoticeVersion, "user_enrollment": e.UserEnrollment, "mailed": e.LinkMailed}
		return audit.Append(ctx, q, r)
	})
	if err != nil {
		return store.Enrolment{}, "", err
	}
	if e.LinkMailed {
		return e, "", nil // the secret above opens nothing: the mail's is minted as it leaves
	}
	return e, s.enrolmentURL(secret), nil
}

var errEnrolmentLink = apperr.NotFound("enrolment")

// openEnrolment resolves a link secret to its enrolment, if in one of
// states (enrolmentUnfinished among them lets a used enrolment whose device
// never finished through).
func (s *Service) openEnrolment(ctx context.Context, q store.Queries, secret string, states ...string) (store.Enrolment, error) {
	kind, hash, err := credential.Parse(secret)
	if err != nil || kind != credential.EnrolmentLink {
		return store.Enrolment{}, errEnrolmentLink
	}
	e, err := q.Enrolments().GetBySecretHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return e, errEnrolmentLink
	}
	if err != nil {
		return e, err
	}
	// Before its expiry: whoever holds a revoked link learns it is closed
	// on purpose, for good.
	if e.State == store.EnrolmentRevoked {
		return e, errEnrolmentRevoked
	}
	if !s.clock().Before(e.ExpiresAt) {
		return e, apperr.Conflict("this enrolment link expired; ask your IT team for a new one")
	}
	if e.SubjectID != "" {
		// A person erased since: their invitations die with their data.
		sub, err := q.Subjects().Get(ctx, e.TenantID, e.SubjectID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return e, err
		}
		if err != nil || sub.State != store.SubjectActive {
			return e, apperr.Conflict("this enrolment link is no longer valid; ask your IT team for a new one")
		}
	}
	for _, st := range states {
		if e.State == st {
			return e, nil
		}
	}
	if slices.Contains(states, enrolmentUnfinished) {
		_, last, err := lastAttempt(ctx, q, e, s.clock())
		switch {
		case err != nil:
			return e, err
		case last == attemptFailed:
			return e, nil
		case last == attemptInstalling:
			return e, errInstalling
		}
	}
	if e.State == store.EnrolmentOpen {
		return e, errNotAccepted
	}
	return e, apperr.Conflict("this enrolment link was already used")
}

// errNotAccepted refuses what only an accepted enrolment offers (its
// profile, its account token) while the notice still waits to be read.
var errNotAccepted = apperr.Conflict("the privacy notice has not been accepted yet: open the invitation link, read the notice and accept it first")

// errConsentNeeded refuses a profile whose person does not consent to the
// current notice: it changed since they accepted, or they withdrew.
// errNoticeChanged refuses an acceptance of a notice version replaced while
// the person read it; the page then shows them the current one.
var errNoticeChanged = apperr.Conflict("the notice changed while you were reading it; please read the current version")

var errConsentNeeded = apperr.Conflict("the notice changed, or your consent was withdrawn, since you accepted it: open the invitation link again, read the notice and accept it before enrolling")

// consentInForce says whether e's person consents to the current notice of
// its class: a consent to it for the class or e's device, not withdrawn. When not (the notice changed
// since they accepted, or they withdrew), the invitation asks again. An
// enrolment for nobody (a shared device) needs none.
func consentInForce(ctx context.Context, q store.Queries, e store.Enrolment, settings privacy.Settings) (bool, error) {
	if e.SubjectID == "" {
		return true, nil
	}
	cs, err := q.Consents().ListForSubject(ctx, e.TenantID, e.SubjectID)
	if err != nil {
		return false, err
	}
	version := settings.NoticeVersions[privacy.Ownership(e.Ownership)]
	// A consent for another of the person's devices does not count here,
	// as it does not for the policy the device is held to (EffectivePolicy).
	return slices.ContainsFunc(cs, func(c store.Consent) bool {
		return c.Ownership == e.Ownership && c.NoticeVersion == version && c.WithdrawnAt.IsZero() &&
			(c.DeviceID == "" || c.DeviceID == e.DeviceID)
	}), nil
}

// wipeConsented is the employee's answer to a full wipe of e's device: the
// one they gave on its enrolment page, as long as a consent to the current
// notice is in force (consentInForce). The answer belongs to the
// enrolment alone: accepting again, or a consent from the portal, can keep
// it or take it back (TakeBackFullWipe), never give it to another device.
// The profile's erase right and every full wipe follow this one rule.
func wipeConsented(e store.Enrolment, consentInForce bool) bool {
	return e.AllowFullWipe && consentInForce
}

// takeBackFullWipe is the privacy core's hook for a consent that takes
// back the full-wipe permission: the person's enrolments of class o (or the
// one of deviceID) no longer allow it.
func (s *Service) takeBackFullWipe(ctx context.Context, q store.Queries, tenantID, subjectID string, o privacy.Ownership, deviceID string) error {
	es, err := q.Enrolments().ListForSubject(ctx, tenantID, subjectID)
	if err != nil {
		return err
	}
	for _, e := range es {
		if e.AllowFullWipe && e.Ownership == string(o) && (deviceID == "" || e.DeviceID == deviceID) {
			if err := q.Enrolments().TakeBackFullWipe(ctx, tenantID, e.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Invitation is what the employee sees before enrolling.
type Invitation struct {
	Enrolment store.Enrolment
	// Consented: the enrolment was accepted and its person still consents
	// to the current notice, so the page offers the profile, not the notice.
	Consented bool
	// AskWipe: the notice is asked with the full-wipe permission, which a
	// personal device's policy allows and which, on accepting again, can
	// only be kept or taken back.
	AskWipe bool
	Notice  store.Notice
	// Languages are those the current notice is published in.
	Languages []string
	// Summary says in plain words what will and will not be collected and
	// what the organisation can and cannot do (Markdown).
	Summary string
}

// Invitation returns the enrolment's notice, in the language that best fits
// preference (a tag or an Accept-Language list), and plain-words summary.
func (s *Service) Invitation(ctx context.Context, secret, preference string) (Invitation, error) {
	q := s.st.Read()
	e, err := s.openEnrolment(ctx, q, secret, store.EnrolmentOpen, EnrolmentAccepted, enrolmentUnfinished)
	if err != nil {
		return Invitation{}, err
	}
	n, languages, err := s.priv.NoticeTranslations(ctx, e.TenantID, privacy.Ownership(e.Ownership), preference)
	if err != nil {
		return Invitation{}, err
	}
	settings, _, err := privacy.LoadSettings(ctx, q, e.TenantID)
	if err != nil {
		return Invitation{}, err
	}
	consented := false
	if e.State != store.EnrolmentOpen {
		if consented, err = consentInForce(ctx, q, e, settings); err != nil {
			return Invitation{}, err
		}
	}
	o := privacy.Ownership(e.Ownership)
	askWipe := mayAskFullWipe(e) && settings.Policy[o].FullWipe && (e.State == store.EnrolmentOpen || e.AllowFullWipe)
	return Invitation{Enrolment: e, Consented: consented, AskWipe: askWipe, Notice: n, Languages: languages, Summary: privacy.PlainSummary(settings, o)}, nil
}

// AcceptInput is the employee's answer to the invitation.
type AcceptInput struct {
	Language string
	// NoticeVersion is the version the employee was shown; a newer one is
	// shown again first.
	NoticeVersion int64
	// SummarySHA256 is the digest (privacy.TextDigest) of the summary the
	// page showed; a summary changed since is shown again first.
	SummarySHA256 string
	AllowFullWipe bool // personal devices only
}

// Accept records the employee's consent to the current notice and opens the
// enrolment for its profile. The notice must still be the one the
// invitation showed: a newer version is shown again first. On an enrolment
// accepted before, it records consent again when the notice changed or the
// employee withdrew since; the full-wipe answer can then only be kept or
// taken back, as it belongs to the enrolment.
func (s *Service) Accept(ctx context.Context, secret string, in AcceptInput, ip string) (store.Enrolment, error) {
	var e store.Enrolment
	err := s.st.Tx(ctx, func(q store.Queries) error {
		var err error
		if e, err = s.openEnrolment(ctx, q, secret, store.EnrolmentOpen, EnrolmentAccepted, enrolmentUnfinished); err != nil {
			return err
		}
		settings, _, err := privacy.LoadSettings(ctx, q, e.TenantID)
		if err != nil {
			return err
		}
		o := privacy.Ownership(e.Ownership)
		allowWipe := in.AllowFullWipe && mayAskFullWipe(e)
		if e.State != store.EnrolmentOpen {
			if ok, err := consentInForce(ctx, q, e, settings); err != nil || ok {
				return err // a second tab, or accepted again: that answer stands
			}
			allowWipe = allowWipe && e.AllowFullWipe
			if !mayAskFullWipe(e) {
				// Not asked on a handed link: a permission it carries from
				// before links were mailed stays, for the portal to take back.
				allowWipe = e.AllowFullWipe
			}
			if e.AllowFullWipe && !allowWipe {
				if err := q.Enrolments().TakeBackFullWipe(ctx, e.TenantID, e.ID); err != nil {
					return err
				}
				e.AllowFullWipe = false
			}
		}
		if in.NoticeVersion != settings.NoticeVersions[o] {
			return errNoticeChanged
		}
		if e.State == store.EnrolmentOpen {
			// The wipe permission belongs to this device's enrolment alone.
			e.State, e.AllowFullWipe = EnrolmentAccepted, allowWipe
			if err := q.Enrolments().Accept(ctx, e.TenantID, e.ID, e.AllowFullWipe); errors.Is(err, store.ErrConflict) {
				return nil // accepted meanwhile (a second tab): that answer and its consent stand
			} else if err != nil {
				return err
			}
		}
		if e.SubjectID == "" {
			return nil // a shared device: nobody's data
		}
		actor := iam.Actor{Type: store.ActorSubject, ID: e.SubjectID, SourceIP: ip}
		_, err = s.priv.RecordConsentIn(ctx, q, e.TenantID, e.SubjectID, privacy.ConsentInput{Ownership: e.Ownership,
			NoticeVersion: settings.NoticeVersions[o], Language: in.Language, Method: "enrolment", AllowFullWipe: allowWipe,
			SummarySHA256: in.SummarySHA256}, actor)
		return err
	})
	return e, err
}
