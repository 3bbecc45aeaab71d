package mdm_test

import (
	"bytes"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestUnlockTokenEscrowIsAudited: the UnlockToken lets the organisation
// clear an iPhone's passcode, so keeping it is audited, as the Bootstrap
// Token's is: when first kept and when the device replaces it, not at each
// TokenUpdate repeating it. A personal device's is not kept, nor audited.
func TestUnlockTokenEscrowIsAudited(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		d, dev := f.enrolled(ts, privacy.Corporate, "")
		escrowed := func() []store.AuditEntry {
			t.Helper()
			entries, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.unlock_token.escrowed", TargetID: dev.ID})
			if err != nil {
				t.Fatal(err)
			}
			return entries
		}
		entries := escrowed()
		if len(entries) != 1 || entries[0].ActorID != dev.ID || entries[0].TargetType != "device" || detailsOf(t, entries[0])["replaced"] != false {
			t.Fatalf("the first unlock token kept was audited as %+v", entries)
		}
		if bytes.Contains(entries[0].Details, []byte("simulated-unlock-token")) {
			t.Error("the audit entry holds the token")
		}
		kept := func() []byte {
			ch, err := st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID)
			if err != nil {
				t.Fatal(err)
			}
			return ch.UnlockToken
		}
		before := kept()

		// The same token again, as devices send it with a new push token.
		d.PushToken = []byte("a-new-push-token-of-this-device")
		if _, err := d.Checkin(f.ctx, d.TokenUpdate()); err != nil {
			t.Fatal(err)
		}
		if n := len(escrowed()); n != 1 {
			t.Errorf("a TokenUpdate repeating the unlock token added %d entries", n-1)
		}
		if !bytes.Equal(kept(), before) {
			t.Error("the same unlock token was escrowed again")
		}

		// Another token replaces it, and is the one ClearPasscode sends.
		tu := d.TokenUpdate()
		tu["UnlockToken"] = []byte("another-unlock-token")
		if _, err := d.Checkin(f.ctx, tu); err != nil {
			t.Fatal(err)
		}
		entries = escrowed()
		if len(entries) != 2 || detailsOf(t, entries[1])["replaced"] != true {
			t.Fatalf("a replaced unlock token was audited as %+v", entries)
		}
		if _, err := d.Poll(f.ctx); err != nil { // the initial inventory
			t.Fatal(err)
		}
		if got := f.clearPasscodeToken(t, d, dev); got != "another-unlock-token" {
			t.Errorf("ClearPasscode sent %q, want the replacing token", got)
		}

		// A personal device's token is neither kept nor audited.
		f.publish(privacy.Personal)
		_, personal := f.enrolled(ts, privacy.Personal, f.subject("erika@acme.test"))
		others, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.unlock_token.escrowed", TargetID: personal.ID})
		if err != nil || len(others) != 0 {
			t.Errorf("a personal device's unlock token audited: %+v (%v)", others, err)
		}
	})
}
