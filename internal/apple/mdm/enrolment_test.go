package mdm_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	smallscep "github.com/smallstep/scep"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/notify/mail/mailtest"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

type fixture struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	priv   *privacy.Service
	svc    *mdm.Service
	sealer secrets.Sealer
	signer *audit.Signer
	tenant string
	now    time.Time
	emails map[string]string // by subject ID, for User Enrollment's sign-in
	log    *slog.Logger      // the served service's; slog's default when nil
}

var admin = iam.Actor{Type: store.ActorAdmin, ID: "admin-1"}

func newFixture(t *testing.T, st store.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, _ := secrets.NewSealer(key)
	signer, err := audit.LoadOrCreateSigner(ctx, st, sealer)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, st: st, sealer: sealer, signer: signer, now: time.Now().UTC().Truncate(time.Microsecond)}
	f.priv = privacy.NewService(st, keys.New(sealer), signer, nil)
	f.priv.SetClock(func() time.Time { return f.now })
	f.svc = mdm.New(st, f.priv, sealer, mdm.Config{PublicURL: "https://mdm.example.test"}, nil)
	f.svc.SetClock(func() time.Time { return f.now })
	f.tenant = store.NewID()
	err = st.Tx(ctx, func(q store.Queries) error {
		return q.Tenants().Create(ctx, store.Tenant{ID: f.tenant, Kind: store.TenantProvider, Name: "Acme", Slug: "acme-" + f.tenant[len(f.tenant)-6:],
			CreatedAt: f.now, UpdatedAt: f.now})
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// subject registers a data subject by email and returns its ID.
func (f *fixture) subject(email string) string {
	f.t.Helper()
	s, err := f.priv.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: email}, admin)
	if err != nil {
		f.t.Fatal(err)
	}
	if f.emails == nil {
		f.emails = map[string]string{}
	}
	f.emails[s.ID] = email
	return s.ID
}

// invite creates an enrolment of class o for the person subjectID ("" for
// none) and returns its link.
func (f *fixture) invite(o privacy.Ownership, subjectID string) string {
	f.t.Helper()
	_, link, err := f.svc.CreateEnrolment(f.ctx, f.tenant, mdm.EnrolmentInput{Ownership: string(o), SubjectID: subjectID}, admin)
	if err != nil {
		f.t.Fatal(err)
	}
	return link
}

func (f *fixture) publish(o privacy.Ownership) {
	f.t.Helper()
	if _, err := f.priv.PublishNotice(f.ctx, f.tenant, privacy.NoticeInput{Ownership: string(o), Translations: []privacy.Translation{
		{Language: "en", Title: "Your device and us", Body: privacy.PlainSummary(privacy.DefaultSettings(), o)}}}, admin); err != nil {
		f.t.Fatal(err)
	}
}

func TestEnrolmentInvitationAndConsent(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.subject("erika@acme.test")
		// Mailed: only a link that reached Erika alone asks her about a full wipe.
		in := mdm.EnrolmentInput{Ownership: "personal", SubjectID: erika, Notify: true}
		f.priv.EnableMail()
		if _, _, err := f.svc.CreateEnrolment(f.ctx, f.tenant, in, admin); !apperr.IsKind(err, apperr.KindConflict) {
			t.Fatalf("an enrolment without a published notice: %v", err)
		}
		f.publish(privacy.Personal)
		if _, _, err := f.svc.CreateEnrolment(f.ctx, f.tenant, mdm.EnrolmentInput{Ownership: "personal"}, admin); !apperr.IsKind(err, apperr.KindInvalid) {
			t.Errorf("a personal enrolment for nobody: %v", err)
		}
		e, _, err := f.svc.CreateEnrolment(f.ctx, f.tenant, in, admin)
		if err != nil {
			t.Fatal(err)
		}
		link := f.deliverLink(mailtest.Start(t)) // the refused attempt queued no mail
		secret := strings.TrimPrefix(link, "https://mdm.example.test/enrol/")
		if !strings.HasPrefix(secret, "sel_") || e.NoticeVersion != 1 {
			t.Fatalf("link %q, enrolment %+v", link, e)
		}
		inv, err := f.svc.Invitation(f.ctx, secret, "de")
		if err != nil {
			t.Fatal(err)
		}
		if inv.Notice.Language != "en" || !strings.Contains(inv.Summary, "Never collected") || !strings.Contains(inv.Summary, "Location") {
			t.Errorf("invitation: %+v", inv)
		}
		if _, err := f.svc.Invitation(f.ctx, "sel_not-a-link", "en"); !apperr.IsKind(err, apperr.KindNotFound) {
			t.Errorf("a forged link: %v", err)
		}
		if _, err := f.svc.Accept(f.ctx, secret, mdm.AcceptInput{Language: "en", NoticeVersion: 0}, "127.0.0.1"); !apperr.IsKind(err, apperr.KindConflict) {
			t.Fatalf("accepting a notice version that was never shown: %v", err)
		}
		if _, err := f.svc.Accept(f.ctx, secret, mdm.AcceptInput{Language: "fr", NoticeVersion: 1}, "127.0.0.1"); !apperr.IsKind(err, apperr.KindInvalid) {
			t.Fatalf("accepting a language the notice lacks: %v", err)
		}
		if got, _ := st.Read().Enrolments().Get(f.ctx, f.tenant, e.ID); got.State != store.EnrolmentOpen {
			t.Fatalf("a refused acceptance changed the enrolment to %s", got.State)
		}
		if _, err := f.svc.Accept(f.ctx, secret, mdm.AcceptInput{Language: "en", NoticeVersion: 1, AllowFullWipe: true}, "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		cs, _ := f.priv.Consents(f.ctx, f.tenant, erika)
		if len(cs.Consents) != 1 || cs.Consents[0].Method != "enrolment" || !cs.Consents[0].AllowFullWipe || cs.Consents[0].NoticeVersion != 1 {
			t.Fatalf("consent: %+v", cs.Consents)
		}
		if got, _ := st.Read().Enrolments().Get(f.ctx, f.tenant, e.ID); !got.AllowFullWipe || got.State != mdm.EnrolmentAccepted {
			t.Errorf("the wipe permission is not on the enrolment: %+v", got)
		}
		f.now = f.now.Add(8 * 24 * time.Hour)
		if _, err := f.svc.Invitation(f.ctx, secret, "en"); !apperr.IsKind(err, apperr.KindConflict) {
			t.Errorf("an expired link: %v", err)
		}
	})
}

// TestCertificateRequestMustNameItsEnrolment: a certificate request whose
// subject is not the one the enrolment's profile names is refused, and the
// device cannot enrol with it.
func TestCertificateRequestMustNameItsEnrolment(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	_, link, err := f.svc.CreateEnrolment(f.ctx, f.tenant, mdm.EnrolmentInput{Ownership: "corporate"}, admin)
	if err != nil {
		t.Fatal(err)
	}
	d, err := sim.New(ts.Client(), false)
	if err != nil {
		t.Fatal(err)
	}
	d.CommonName = "steward-device-another-enrolment"
	var refused *sim.RefusedError
	if err := d.Prepare(f.ctx, link, false); !errors.As(err, &refused) || refused.FailInfo != string(smallscep.BadRequest) {
		t.Fatalf("a request naming another enrolment: %v, want a badRequest refusal", err)
	}
}
