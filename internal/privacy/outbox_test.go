package privacy_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/notify/mail"
	"github.com/steward-mdm/steward/internal/notify/mail/mailtest"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestOutboxDeliversOverSTARTTLS sends consent requests through a real SMTP
// server on loopback.
func TestOutboxDeliversOverSTARTTLS(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		server := mailtest.Start(t)
		mailer, err := mail.New(server.Config())
		if err != nil {
			t.Fatal(err)
		}
		erika, bob, gone := f.person("erika@acme.test"), f.person("bob@acme.test"), f.person("gone@acme.test")
		for _, s := range []store.Subject{erika, bob, gone} {
			f.device(s.ID, privacy.Personal)
		}
		server.Refuse = func(to string) error {
			if to == "bob@acme.test" {
				return &smtp.SMTPError{Code: 451, Message: "try later"}
			}
			return nil
		}
		if _, err := f.svc.PublishNotice(f.ctx, f.tenant, privacy.NoticeInput{Ownership: "personal",
			Translations: []privacy.Translation{{Language: "en", Title: "Notice", Body: "We see managed apps only."}}}, admin); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.EraseSubject(f.ctx, f.tenant, gone.ID, "left the company, Art 17", admin); err != nil {
			t.Fatal(err)
		}
		out := &privacy.Outbox{Service: f.svc, Mailer: mailer}
		sent, err := out.Deliver(f.ctx)
		if err != nil || sent != 1 {
			t.Fatalf("deliver: %d sent, %v", sent, err)
		}
		msgs := server.Messages()
		if len(msgs) != 1 || msgs[0].To[0] != "erika@acme.test" || !bytes.Contains(msgs[0].Data, []byte("privacy notice")) {
			t.Fatalf("received: %+v", msgs)
		}
		q := f.st.Read()
		bobs, _ := q.Notifications().ListForSubject(f.ctx, f.tenant, bob.ID)
		if len(bobs) != 1 || bobs[0].State != "queued" || bobs[0].Attempts != 1 || strings.Contains(bobs[0].LastError, "bob@") {
			t.Errorf("a temporary failure must stay queued for retry, without the address: %+v", bobs)
		}
		// The erased person's queued mail was deleted with the rest of their data.
		if gones, _ := q.Notifications().ListForSubject(f.ctx, f.tenant, gone.ID); len(gones) != 0 {
			t.Errorf("the erased person still has %d notifications", len(gones))
		}
		// Nothing is due again until the back-off passes.
		if sent, _ := out.Deliver(f.ctx); sent != 0 || len(server.Messages()) != 1 {
			t.Errorf("resent %d before the back-off", sent)
		}
	})
}

// TestMailedPortalKeyExistsOnlyInTheMail checks the key is minted at send
// time: the outbox row never holds it, the mail does, and it works.
func TestMailedPortalKeyExistsOnlyInTheMail(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	server := mailtest.Start(t)
	mailer, err := mail.New(server.Config())
	if err != nil {
		t.Fatal(err)
	}
	erika := f.person("erika@acme.test")
	if _, _, err := f.svc.IssuePortalToken(f.ctx, f.tenant, erika.ID, 0, true, admin); !apperr.IsKind(err, apperr.KindConflict) {
		t.Fatalf("a key mailed by a server that sends no mail: %v", err)
	}
	f.svc.EnableMail()
	shown, _, err := f.svc.IssuePortalToken(f.ctx, f.tenant, erika.ID, 0, true, admin)
	if err != nil || shown != "" {
		t.Fatalf("a mailed key was handed back (%q, %v)", shown, err)
	}
	if _, err := (&privacy.Outbox{Service: f.svc, Mailer: mailer}).Deliver(f.ctx); err != nil {
		t.Fatal(err)
	}
	msgs := server.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d mails", len(msgs))
	}
	i := bytes.Index(msgs[0].Data, []byte("spt_"))
	if i < 0 {
		t.Fatalf("no key in the mail:\n%s", msgs[0].Data)
	}
	key := strings.Fields(string(msgs[0].Data[i:]))[0]
	if _, err := f.svc.AuthenticatePortal(f.ctx, key); err != nil {
		t.Fatalf("the mailed key does not work: %v", err)
	}
	if bytes.Contains(storetest.AllValues(t, f.st), []byte(key)) || bytes.Contains(storetest.AllValues(t, f.st), []byte("spt_")) {
		t.Error("the database holds the mailed key")
	}
}

// stealingMailer hands its first message to the SMTP server, then lets
// another node take the outbox lease, as one does when a batch of slow
// sends outlasts it.
type stealingMailer struct {
	privacy.Mailer
	steal func()
	sends int
}

func (m *stealingMailer) Send(ctx context.Context, msg mail.Message) error {
	m.sends++
	err := m.Mailer.Send(ctx, msg)
	if m.sends == 1 {
		m.steal()
	}
	return err
}

// TestOutboxStopsOnceAnotherNodeHoldsTheLease: a node renews the outbox
// lease before each message and stops once another node took it, leaving
// the rest for that node, so no one gets a mail twice (a second enrolment
// link voids the first).
func TestOutboxStopsOnceAnotherNodeHoldsTheLease(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	server := mailtest.Start(t)
	mailer, err := mail.New(server.Config())
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"erika@acme.test", "bob@acme.test", "ana@acme.test"} {
		f.device(f.person(who).ID, privacy.Personal)
	}
	if _, err := f.svc.PublishNotice(f.ctx, f.tenant, privacy.NoticeInput{Ownership: "personal",
		Translations: []privacy.Translation{{Language: "en", Title: "Notice", Body: "We see managed apps only."}}}, admin); err != nil {
		t.Fatal(err)
	}
	leases := f.st.Read().Leases()
	const ttl = time.Minute
	if held, err := leases.TryAcquire(f.ctx, "mail-outbox", "node-a", time.Now(), ttl); !held || err != nil {
		t.Fatalf("node A taking the lease: %v %v", held, err)
	}
	slow := &stealingMailer{Mailer: mailer, steal: func() {
		// Node B finds the lease lapsed (A's sends took longer than it).
		if held, err := leases.TryAcquire(f.ctx, "mail-outbox", "node-b", time.Now().Add(2*ttl), ttl); !held || err != nil {
			t.Errorf("node B taking the lapsed lease: %v %v", held, err)
		}
	}}
	a := &privacy.Outbox{Service: f.svc, Mailer: slow, Holder: "node-a", LeaseTTL: ttl}
	if sent, err := a.Deliver(f.ctx); err != nil || sent != 1 || slow.sends != 1 {
		t.Fatalf("node A after losing the lease: %d sent (%d handed to SMTP), %v; want 1", sent, slow.sends, err)
	}
	b := &privacy.Outbox{Service: f.svc, Mailer: mailer, Holder: "node-b", LeaseTTL: ttl}
	if sent, err := b.Deliver(f.ctx); err != nil || sent != 2 {
		t.Fatalf("node B: %d sent, %v; want the other 2", sent, err)
	}
	seen := map[string]int{}
	for _, m := range server.Messages() {
		seen[m.To[0]]++
	}
	if len(seen) != 3 || seen["erika@acme.test"] != 1 || seen["bob@acme.test"] != 1 || seen["ana@acme.test"] != 1 {
		t.Errorf("mails per person: %v; want one each", seen)
	}
}
