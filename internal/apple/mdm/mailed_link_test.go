package mdm_test

import (
	"bytes"
	"io"
	"mime/quotedprintable"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/notify/mail"
	"github.com/steward-mdm/steward/internal/notify/mail/mailtest"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// inviteByMail creates an enrolment of class o for subjectID whose link is
// mailed, sends the mail through a real SMTP server on loopback and returns
// the link the person received.
func (f *fixture) inviteByMail(o privacy.Ownership, subjectID string) string {
	f.t.Helper()
	f.priv.EnableMail()
	e, shown, err := f.svc.CreateEnrolment(f.ctx, f.tenant, mdm.EnrolmentInput{Ownership: string(o), SubjectID: subjectID, Notify: true}, admin)
	if err != nil || shown != "" || !e.LinkMailed {
		f.t.Fatalf("creating a mailed enrolment: link %q shown, %+v, %v", shown, e, err)
	}
	server := mailtest.Start(f.t)
	return f.deliverLink(server)
}

// deliverLink runs the outbox once and returns the enrolment link in the
// one mail server received.
func (f *fixture) deliverLink(server *mailtest.Server) string {
	f.t.Helper()
	before := len(server.Messages())
	f.deliver(server)
	msgs := server.Messages()
	if len(msgs) != before+1 {
		f.t.Fatalf("%d mails sent, want 1", len(msgs)-before)
	}
	return mailedLink(f.t, msgs[len(msgs)-1])
}

func (f *fixture) deliver(server *mailtest.Server) {
	f.t.Helper()
	mailer, err := mail.New(server.Config())
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := (&privacy.Outbox{Service: f.priv, Mailer: mailer}).Deliver(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

var enrolmentLinkPattern = regexp.MustCompile(`https://\S+/enrol/sel_\S+`)

func mailedLink(t *testing.T, m mailtest.Message) string {
	t.Helper()
	_, body, ok := bytes.Cut(m.Data, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("a mail without a body:\n%s", m.Data)
	}
	text, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	link := enrolmentLinkPattern.Find(text)
	if link == nil {
		t.Fatalf("no enrolment link in the mail:\n%s", text)
	}
	return string(link)
}

// TestMailedLinkExistsOnlyInTheMail: a server that sends no mail refuses to
// mail a link; a mailed link is not returned to the admin, is minted as the
// mail leaves (the outbox row holds no key, the
// database no link), and opens the invitation, which asks the person about
// a full wipe; the audit entry says it was mailed.
func TestMailedLinkExistsOnlyInTheMail(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Personal)
		f.allowFullWipe(true)
		erika := f.subject("erika@acme.test")
		if _, _, err := f.svc.CreateEnrolment(f.ctx, f.tenant, mdm.EnrolmentInput{Ownership: "corporate", Notify: true}, admin); !apperr.IsKind(err, apperr.KindInvalid) {
			t.Fatalf("a mailed link for nobody: %v", err)
		}
		in := mdm.EnrolmentInput{Ownership: "personal", SubjectID: erika, Notify: true}
		if _, _, err := f.svc.CreateEnrolment(f.ctx, f.tenant, in, admin); !apperr.IsKind(err, apperr.KindConflict) || !strings.Contains(err.Error(), "e-mail") {
			t.Fatalf("a mailed link from a server that sends no mail: %v", err)
		}
		f.priv.EnableMail()
		e, shown, err := f.svc.CreateEnrolment(f.ctx, f.tenant, in, admin)
		if err != nil || shown != "" {
			t.Fatalf("created: link %q, %v", shown, err)
		}
		queued, _ := f.st.Read().Notifications().ListForSubject(f.ctx, f.tenant, erika)
		if len(queued) != 1 || queued[0].Kind != mdm.EnrolmentLinkKind || queued[0].Ref != e.ID || strings.Contains(queued[0].Body, "sel_") {
			t.Fatalf("queued: %+v", queued)
		}
		server := mailtest.Start(t)
		link := f.deliverLink(server)
		if to := server.Messages()[0].To; len(to) != 1 || to[0] != "erika@acme.test" {
			t.Errorf("mailed to %v", to)
		}
		if bytes.Contains(storetest.AllValues(t, f.st), []byte(path.Base(link))) {
			t.Error("the database holds the mailed link")
		}
		inv, err := f.svc.Invitation(f.ctx, path.Base(link), "en")
		if err != nil || !inv.AskWipe || inv.Enrolment.ID != e.ID {
			t.Fatalf("the mailed link's invitation: %+v, %v", inv, err)
		}
		got, err := f.svc.Accept(f.ctx, path.Base(link), mdm.AcceptInput{Language: "en", NoticeVersion: inv.Notice.Version, AllowFullWipe: true}, "192.0.2.1")
		if err != nil || !got.AllowFullWipe {
			t.Fatalf("accepted with a full wipe: %+v, %v", got, err)
		}
		entries, _ := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "enrolment.create", TargetID: e.ID})
		if len(entries) != 1 || !bytes.Contains(entries[0].Details, []byte(`"mailed":true`)) {
			t.Error("the enrolment's audit entry does not say the link was mailed")
		}
	})
}

// TestHandedLinkGrantsNoFullWipe: the person of a personal device answers
// for a full wipe only through a link that reached them alone. A link
// handed to the admin neither asks nor takes the permission, whatever is
// posted, and its profile grants no erase right.
func TestHandedLinkGrantsNoFullWipe(t *testing.T) {
	f, ts, erika, _ := personalInvitation(t)
	link := f.invite(privacy.Personal, erika)
	if page := invitationPage(t, ts, link); strings.Contains(page, "allow_full_wipe") {
		t.Error("a link the admin was shown asks for the full-wipe permission")
	}
	d := personalPhone(t, ts)
	if err := d.Install(f.ctx, link, true); err != nil {
		t.Fatal(err)
	}
	if mdmproto.AccessRights(d.AccessRights())&mdmproto.AccessDeviceErase != 0 {
		t.Error("the profile of a handed link grants the erase right")
	}
	cs, _ := f.priv.Consents(f.ctx, f.tenant, erika)
	if len(cs.Consents) != 1 || cs.Consents[0].AllowFullWipe {
		t.Errorf("consents: %+v", cs.Consents)
	}
	es, _ := f.st.Read().Enrolments().ListForSubject(f.ctx, f.tenant, erika)
	for _, e := range es {
		if e.AllowFullWipe {
			t.Errorf("a handed link's enrolment allows a full wipe: %+v", e)
		}
	}
}

// TestMailedLinkClosedBeforeSending: a link revoked before its mail left
// is never minted or sent, and the mail fails for good; a temporary
// refusal is retried, and the link the later attempt carries works.
func TestMailedLinkClosedBeforeSending(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	erika, bob := f.subject("erika@acme.test"), f.subject("bob@acme.test")
	f.priv.EnableMail()
	revoked, _, err := f.svc.CreateEnrolment(f.ctx, f.tenant, mdm.EnrolmentInput{Ownership: "corporate", SubjectID: erika, Notify: true}, admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RevokeEnrolment(f.ctx, f.tenant, revoked.ID, admin); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.CreateEnrolment(f.ctx, f.tenant, mdm.EnrolmentInput{Ownership: "corporate", SubjectID: bob, Notify: true}, admin); err != nil {
		t.Fatal(err)
	}
	server := mailtest.Start(t)
	refused := 0
	server.Refuse = func(string) error {
		if refused++; refused == 1 {
			return &smtp.SMTPError{Code: 451, Message: "try later"}
		}
		return nil
	}
	f.deliver(server)
	if n := len(server.Messages()); n != 0 {
		t.Fatalf("%d mails on the first round", n)
	}
	erikas, _ := f.st.Read().Notifications().ListForSubject(f.ctx, f.tenant, erika)
	if len(erikas) != 1 || erikas[0].State != "failed" || !strings.Contains(erikas[0].LastError, "closed") {
		t.Errorf("the revoked link's mail: %+v", erikas)
	}
	f.now = f.now.Add(time.Hour)
	link := f.deliverLink(server)
	if _, err := f.svc.Invitation(f.ctx, path.Base(link), "en"); err != nil {
		t.Errorf("the link of the mail sent on the second attempt: %v", err)
	}
}

// TestHandedLinkKeepsAnEarlierPermission: a full-wipe permission given
// through a handed link before links were mailed is neither asked again nor
// taken back when the person accepts a new notice on that link.
func TestHandedLinkKeepsAnEarlierPermission(t *testing.T) {
	f, ts, erika, _ := personalInvitation(t)
	link := f.invite(privacy.Personal, erika)
	inv, err := f.svc.Invitation(f.ctx, path.Base(link), "en")
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.svc.Accept(f.ctx, path.Base(link), mdm.AcceptInput{Language: "en", NoticeVersion: inv.Notice.Version}, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	e.AllowFullWipe = true // as an earlier release recorded it
	if err := f.st.Tx(f.ctx, func(q store.Queries) error { return q.Enrolments().Update(f.ctx, e) }); err != nil {
		t.Fatal(err)
	}
	f.publish(privacy.Personal)
	if page := invitationPage(t, ts, link); strings.Contains(page, "allow_full_wipe") {
		t.Error("a handed link asks for the full-wipe permission on accepting again")
	}
	acceptAgainOnPage(t, f, ts, link, false)
	if got, err := f.st.Read().Enrolments().Get(f.ctx, f.tenant, e.ID); err != nil || !got.AllowFullWipe {
		t.Errorf("accepting a new notice took back a permission it never asked about: %+v, %v", got, err)
	}
}
