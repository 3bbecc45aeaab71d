package mdm_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestErasureForgetsUserChannelErrorText: a person's user channels on
// devices that are not theirs (a colleague's Mac, a Shared iPad) keep,
// where the policy shows usage and logs, what the devices wrote about
// their account into failed commands. Erasing the person strips it from
// those commands, counted in the deletion certificate; Apple's domain and
// code stay, and another user's commands on the same iPad keep theirs.
func TestErasureForgetsUserChannelErrorText(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f, s := newSchool(t, st)
		setDiagnostics(t, f, privacy.Corporate, privacy.Show)
		setDiagnostics(t, f, privacy.Shared, privacy.Show)
		annaOnIPad, ben := sharedIPadUser(s.ipad, "anna@school.example"), sharedIPadUser(s.ipad, "ben@school.example")
		annaOnMac := s.mac.NewUser("anna@school.example", "Anna")
		// failOn queues a ProfileList on u's channel of device d and has
		// the device fail it with text naming what the user holds there.
		failOn := func(u *sim.User, d store.Device, account, text string) string {
			t.Helper()
			if err := u.LogIn(f.ctx); err != nil {
				t.Fatal(err)
			}
			found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, d.ID, account, lookupReason, admin)
			if err != nil || len(found) != 1 {
				t.Fatalf("%s's channel on %s: %+v, %v", account, d.ID, found, err)
			}
			if _, err := f.svc.EnqueueForUser(f.ctx, f.tenant, d.ID, found[0].ID, mdmproto.ProfileList{}, "", admin); err != nil {
				t.Fatal(err)
			}
			sent := command(t, u, map[string]any{"Status": "Idle"})
			if _, err := u.Send(f.ctx, map[string]any{"Status": "Error", "CommandUUID": sent.CommandUUID, "ErrorChain": []map[string]any{
				{"ErrorCode": 4001, "ErrorDomain": "MCProfileErrorDomain", "LocalizedDescription": text}}}); err != nil {
				t.Fatal(err)
			}
			if c, err := st.Read().Commands().Get(f.ctx, f.tenant, sent.CommandUUID); err != nil || c.UserChannel != found[0].ID ||
				!strings.Contains(c.ErrorChain, text) {
				t.Fatalf("precondition: the user channel's failed command keeps the device's text: %+v, %v", c, err)
			}
			return sent.CommandUUID
		}
		onMac := failOn(annaOnMac, s.bobsMac, "anna@school.example", "The profile “Anna's running club” could not be removed.")
		onIPad := failOn(annaOnIPad, s.sharedIPad, "anna@school.example", "The profile “Anna's choir” could not be removed.")
		bens := failOn(ben, s.sharedIPad, "ben@school.example", "The profile “Ben's chess club” could not be removed.")

		signed, err := f.priv.EraseSubject(f.ctx, f.tenant, s.anna, "erasure request", admin)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{onMac, onIPad} {
			c, err := st.Read().Commands().Get(f.ctx, f.tenant, id)
			if err != nil {
				t.Fatal(err)
			}
			var chain []mdmproto.ErrorChainItem
			if err := json.Unmarshal([]byte(c.ErrorChain), &chain); err != nil || len(chain) != 1 ||
				chain[0] != (mdmproto.ErrorChainItem{ErrorCode: 4001, ErrorDomain: "MCProfileErrorDomain"}) {
				t.Errorf("after erasing anna, her failed command on device %s reads %s; want the domain and code only", c.DeviceID, c.ErrorChain)
			}
		}
		if c, err := st.Read().Commands().Get(f.ctx, f.tenant, bens); err != nil || !strings.Contains(c.ErrorChain, "chess club") {
			t.Errorf("ben's failed command lost its text with anna's erasure: %s, %v", c.ErrorChain, err)
		}
		var cert privacy.Certificate
		if err := json.Unmarshal([]byte(signed.Certificate), &cert); err != nil || cert.RowsRemoved["command_error_texts"] != 2 {
			t.Errorf("deletion certificate: %+v, %v; want two commands' error texts", cert.RowsRemoved, err)
		}
	})
}
