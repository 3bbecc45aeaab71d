package mdm_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestEnrolmentUnderAPolicyThatAsksNothing: a collection policy may drop
// every category; the device still enrols, and is asked nothing: no
// DeviceInformation query, no security state, no app list.
func TestEnrolmentUnderAPolicyThatAsksNothing(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	var changes []privacy.Change
	for _, c := range privacy.Categories {
		changes = append(changes, privacy.Change{Ownership: privacy.Corporate, Category: c.Category, Mode: privacy.Drop})
	}
	res, err := f.priv.RequestPolicyChange(f.ctx, f.tenant, privacy.PolicyChangeInput{Changes: changes,
		Reason: "collect nothing we do not need"}, "admin-a", admin)
	if err != nil || !res.Applied {
		t.Fatalf("narrowing the policy: %+v %v", res, err)
	}
	if q := mdm.DeviceInformationQueries(res.Policy, privacy.Corporate); len(q) != 0 {
		t.Fatalf("the policy still allows %v; the test needs one that allows no query", q)
	}
	ts := f.serve()
	_, dev := f.enrolled(ts, privacy.Corporate, "")
	if dev.State != store.DeviceEnrolled {
		t.Fatalf("device state %q", dev.State)
	}
	cmds, err := f.st.Read().Commands().List(f.ctx, f.tenant, dev.ID, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		t.Errorf("asked %s at enrolment, though the policy keeps nothing", c.RequestType)
	}
}

// TestUnlockTokenKeptOnlyForCorporateDevices: a personal device's passcode
// can never be cleared, so its unlock token is not escrowed; nor is its
// bootstrap token.
func TestUnlockTokenKeptOnlyForCorporateDevices(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	ts := f.serve()
	for o, want := range map[privacy.Ownership]bool{privacy.Corporate: true, privacy.Personal: false} {
		f.publish(o)
		subject := ""
		if o == privacy.Personal {
			subject = f.subject("erika@acme.test")
		}
		d, dev := f.enrolled(ts, o, subject)
		if _, sent := d.TokenUpdate()["UnlockToken"]; !sent {
			t.Fatal("the simulated device sends no unlock token; the test proves nothing")
		}
		ch, err := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := ch.UnlockToken != nil; got != want {
			t.Errorf("%s device: unlock token kept %v, want %v", o, got, want)
		}
		// The bootstrap token, a Mac's, follows the same rule.
		d, dev = f.enrolledWith(ts, o, subject, mac)
		if _, err := d.Checkin(f.ctx, map[string]any{"MessageType": "SetBootstrapToken", "UDID": d.UDID, "BootstrapToken": []byte("bt")}); err != nil {
			t.Fatal(err)
		}
		if ch, _ = f.st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID); (ch.Bootstrap != nil) != want {
			t.Errorf("%s device: bootstrap token kept %v, want %v", o, ch.Bootstrap != nil, want)
		}
		if want {
			continue
		}
		// One escrowed before the rule is never handed back, and goes at
		// the device's next SetBootstrapToken.
		sealed := []byte("sealed before the rule")
		if err := f.st.Tx(f.ctx, func(q store.Queries) error {
			return q.AppleChannels().Change(f.ctx, f.tenant, dev.ID, store.ChannelChange{At: f.now, Bootstrap: &sealed})
		}); err != nil {
			t.Fatal(err)
		}
		out, err := d.Checkin(f.ctx, map[string]any{"MessageType": "GetBootstrapToken", "UDID": d.UDID})
		var got struct{ BootstrapToken []byte }
		if _, perr := plist.Unmarshal(out, &got); err != nil || perr != nil || len(got.BootstrapToken) != 0 {
			t.Errorf("a personal Mac's old escrow handed back: %q, %v", got.BootstrapToken, err)
		}
		if strings.Contains(string(out), "BootstrapToken") {
			t.Errorf("no token, but the answer holds the key: %s", out)
		}
		if _, err := d.Checkin(f.ctx, map[string]any{"MessageType": "SetBootstrapToken", "UDID": d.UDID}); err != nil {
			t.Fatal(err)
		}
		if ch, _ = f.st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID); ch.Bootstrap != nil {
			t.Error("a personal Mac's old escrow survived its SetBootstrapToken")
		}
	}
}

// TestBootstrapTokenIsAudited: the Bootstrap Token unlocks a Mac's
// SecureToken, so keeping it, clearing it and handing it back are audited
// against the device, without the token; a personal Mac's is never kept,
// and nothing is recorded for it.
func TestBootstrapTokenIsAudited(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	ts := f.serve()
	f.publish(privacy.Corporate)
	f.publish(privacy.Personal)
	corporate, dev := f.enrolledWith(ts, privacy.Corporate, "", mac)
	personal, _ := f.enrolledWith(ts, privacy.Personal, f.subject("erika@acme.test"), mac)
	token := []byte("bootstrap-secret")
	head := auditSeq(t, f.st, f.tenant)
	for _, msg := range []struct {
		d    *sim.Device
		body map[string]any
	}{
		{personal, map[string]any{"MessageType": "SetBootstrapToken", "BootstrapToken": token}},
		{personal, map[string]any{"MessageType": "GetBootstrapToken"}},
		{corporate, map[string]any{"MessageType": "SetBootstrapToken", "BootstrapToken": token}},
		{corporate, map[string]any{"MessageType": "GetBootstrapToken"}},
		{corporate, map[string]any{"MessageType": "SetBootstrapToken"}},
		{corporate, map[string]any{"MessageType": "GetBootstrapToken"}},
		{corporate, map[string]any{"MessageType": "SetBootstrapToken"}},
	} {
		msg.body["UDID"] = msg.d.UDID
		if _, err := msg.d.Checkin(f.ctx, msg.body); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{AfterSeq: head})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if e.TargetID != dev.ID || e.ActorID != dev.ID {
			t.Errorf("%s recorded against %s by %s, want the corporate Mac %s", e.Action, e.TargetID, e.ActorID, dev.ID)
		}
		if strings.Contains(fmt.Sprint(e), string(token)) {
			t.Errorf("the token is in the audit entry %+v", e)
		}
		got = append(got, e.Action)
	}
	want := []string{"mdm.bootstrap_token.escrowed", "mdm.bootstrap_token.released", "mdm.bootstrap_token.cleared"}
	if !slices.Equal(got, want) {
		t.Errorf("audited %v, want %v", got, want)
	}
}
