package privacy_test

import (
	"bytes"
	"strings"
	"testing"

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
