package privacy_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/exporttest"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestUpdateSubject: an admin sets a person's Managed Apple Account when it
// is not their e-mail, and changes their name. The profile stays encrypted,
// the audit names the fields but not their values, the export shows the
// account, and an erased person cannot be changed.
func TestUpdateSubject(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		open := func() privacy.Profile {
			t.Helper()
			sub, err := f.svc.Subject(f.ctx, st.Read(), f.tenant, erika.ID)
			if err != nil {
				t.Fatal(err)
			}
			p, err := f.svc.OpenProfile(f.ctx, st.Read(), sub)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		if p := open(); p.AppleAccount() != "erika@acme.test" {
			t.Fatalf("without a Managed Apple Account the e-mail is the account: %q", p.AppleAccount())
		}
		str := func(s string) *string { return &s }
		for _, bad := range []string{"not an account", "Erika <erika@appleid.acme.test>"} {
			if _, err := f.svc.UpdateSubject(f.ctx, f.tenant, erika.ID, privacy.SubjectUpdate{ManagedAppleID: str(bad)}, admin); !apperr.IsKind(err, apperr.KindInvalid) {
				t.Errorf("managed_apple_id %q: %v, want it refused as invalid", bad, err)
			}
		}
		sub, err := f.svc.UpdateSubject(f.ctx, f.tenant, erika.ID, privacy.SubjectUpdate{ManagedAppleID: str("Erika@AppleID.acme.test"), Name: str("Erika Beispiel")}, admin)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sub.Profile, []byte("appleid")) {
			t.Error("the Managed Apple Account is stored in clear")
		}
		p := open()
		if p.ManagedAppleID != "erika@appleid.acme.test" || p.AppleAccount() != p.ManagedAppleID || p.Name != "Erika Beispiel" ||
			p.Department != "Sales" || p.Email != "erika@acme.test" {
			t.Errorf("after the update: %+v", p)
		}
		entries, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "subject.update"})
		if err != nil || len(entries) != 1 {
			t.Fatalf("update audit entries: %d, %v", len(entries), err)
		}
		if d := string(entries[0].Details); !bytes.Contains(entries[0].Details, []byte("managed_apple_id")) || bytes.Contains(entries[0].Details, []byte("appleid.acme")) ||
			bytes.Contains(entries[0].Details, []byte("Beispiel")) {
			t.Errorf("audit details %s: want the fields' names, not their values", d)
		}
		arc, err := f.svc.ExportSubject(f.ctx, f.tenant, erika.ID, "subject access request", admin)
		if err != nil {
			t.Fatal(err)
		}
		if exp, _, _ := exporttest.Open(t, arc); exp.Person.AppleAccount != "erika@appleid.acme.test" {
			t.Errorf("export: Managed Apple Account %q", exp.Person.AppleAccount)
		}

		// One account name names one person: another's e-mail or account
		// is refused, as is a new person with either.
		max, err := f.svc.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "max@acme.test"}, admin)
		if err != nil {
			t.Fatal(err)
		}
		for _, taken := range []string{"erika@acme.test", "erika@appleid.acme.test"} {
			if _, err := f.svc.UpdateSubject(f.ctx, f.tenant, max.ID, privacy.SubjectUpdate{ManagedAppleID: str(taken)}, admin); !apperr.IsKind(err, apperr.KindConflict) {
				t.Errorf("max's account set to %s: %v, want a conflict", taken, err)
			}
		}
		if _, err := f.svc.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@appleid.acme.test"}, admin); !apperr.IsKind(err, apperr.KindConflict) {
			t.Errorf("a new person whose e-mail is erika's account: %v, want a conflict", err)
		}
		if _, err := f.svc.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "moritz@acme.test", ManagedAppleID: "max@acme.test"}, admin); !apperr.IsKind(err, apperr.KindConflict) {
			t.Errorf("a new person whose account is max's e-mail: %v, want a conflict", err)
		}

		// The e-mail again: the account is the e-mail once more, and the
		// replaced account is kept for erasure only.
		if _, err := f.svc.UpdateSubject(f.ctx, f.tenant, erika.ID, privacy.SubjectUpdate{ManagedAppleID: str("erika@acme.test")}, admin); err != nil {
			t.Fatal(err)
		}
		if p := open(); p.ManagedAppleID != "" || p.AppleAccount() != "erika@acme.test" ||
			!slices.Equal(p.AppleAccounts(), []string{"erika@acme.test"}) {
			t.Errorf("set back to the e-mail: %+v, accounts %v", p, p.AppleAccounts())
		}
		var replaced []string
		f.svc.OnAccountReplaced(func(_ context.Context, _ store.Queries, sub store.Subject, account string) error {
			replaced = append(replaced, sub.ID+" "+account)
			return nil
		})
		if _, err := f.svc.UpdateSubject(f.ctx, f.tenant, max.ID, privacy.SubjectUpdate{ManagedAppleID: str("erika@appleid.acme.test")}, admin); err != nil {
			t.Errorf("erika's former account for max: %v", err)
		}
		if _, err := f.svc.UpdateSubject(f.ctx, f.tenant, max.ID, privacy.SubjectUpdate{ManagedAppleID: str("max@appleid.acme.test")}, admin); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(replaced, []string{max.ID + " ", max.ID + " erika@appleid.acme.test"}) {
			t.Errorf("replaced accounts told to the hook: %v, want max's e-mail (told as none), then the account max gave up", replaced)
		}
		if _, err := f.svc.EraseSubject(f.ctx, f.tenant, erika.ID, "erasure request", admin); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.UpdateSubject(f.ctx, f.tenant, erika.ID, privacy.SubjectUpdate{Name: str("X")}, admin); !apperr.IsKind(err, apperr.KindConflict) {
			t.Errorf("updating an erased person: %v, want a conflict", err)
		}
		if _, err := f.svc.UpdateSubject(f.ctx, f.tenant, "no-such-person", privacy.SubjectUpdate{Name: str("X")}, admin); !apperr.IsKind(err, apperr.KindNotFound) {
			t.Errorf("updating nobody: %v, want not found", err)
		}
	})
}
