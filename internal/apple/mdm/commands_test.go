package mdm_test

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestAppStoreAppsOnUserEnrollment: User Enrollment installs App Store apps
// only as Apps and Books assignments, so they go with PurchaseMethod 1;
// other devices keep Apple's default, and an enterprise app has none.
func TestAppStoreAppsOnUserEnrollment(t *testing.T) {
	store_ := mdmproto.InstallApplication{ITunesStoreID: 361309726, ManagementFlags: mdmproto.ManagementFlagRemoveWithMDM}
	manifest := mdmproto.InstallApplication{ManifestURL: "https://apps.example.com/expenses/manifest.plist"}
	for _, c := range []struct {
		ownership privacy.Ownership
		app       mdmproto.InstallApplication
		want      mdmproto.PurchaseMethod
	}{
		{privacy.UserEnrolled, store_, mdmproto.PurchaseVPP},
		{privacy.UserEnrolled, mdmproto.InstallApplication{Identifier: "com.example.expenses"}, mdmproto.PurchaseVPP},
		{privacy.UserEnrolled, manifest, mdmproto.PurchaseFree},
		{privacy.Personal, store_, mdmproto.PurchaseFree},
		{privacy.Corporate, store_, mdmproto.PurchaseFree},
	} {
		r, err := mdm.RequestFor(c.app, store.Device{Platform: "ios", Ownership: string(c.ownership)}, privacy.Settings{}, mdm.DeviceFacts{})
		if err != nil || r.(mdmproto.InstallApplication).PurchaseMethod != c.want {
			t.Errorf("%s %+v: %+v, %v; want PurchaseMethod %d", c.ownership, c.app, r, err, c.want)
		}
	}

	// Through the protocol: the user-enrolled device installs the app.
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	d, dev := f.enrolled(ts, privacy.UserEnrolled, erika)
	if _, err := d.Poll(f.ctx); err != nil { // the initial inventory
		t.Fatal(err)
	}
	// Only an app the catalogue approves goes to an employee's device:
	// the answer to any install tells whether they have their own copy.
	_, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, store_, "", admin)
	if ae := apperr.As(err); ae == nil || ae.Kind != apperr.KindForbidden || ae.Details["reason"] != mdm.SkipOwnership {
		t.Fatalf("an uncatalogued app for an employee's device: %v", err)
	}
	f.addToCatalogue(store.CatalogueApp{Identifier: "com.example.expenses", Kind: store.AppApproved, StoreID: store_.ITunesStoreID},
		store.CatalogueApp{Identifier: "com.example.dating", Kind: store.AppBlocked, StoreID: 555})
	for _, other := range []mdmproto.InstallApplication{{ITunesStoreID: 555}, {Identifier: "com.example.dating"}, manifest} {
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, other, "", admin); !apperr.IsKind(err, apperr.KindForbidden) {
			t.Errorf("%+v is not what the catalogue approves: %v", other, err)
		}
	}
	if open, _ := f.st.Read().Commands().OpenOnChannel(f.ctx, f.tenant, dev.ID, ""); open != 0 {
		t.Fatalf("refused installs left %d commands queued", open)
	}
	cmds, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, store_, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := d.Poll(f.ctx); err != nil || n != 1 {
		t.Fatalf("the device answered %d commands (%v), want the install", n, err)
	}
	if got, _ := f.st.Read().Commands().Get(f.ctx, f.tenant, cmds[0].ID); got.State != store.CommandAcknowledged {
		t.Errorf("InstallApplication on User Enrollment: %s (%s)", got.State, mdm.ErrorSummary(got.ErrorChain))
	}
}

// TestErrorChainText: a device's error descriptions can name what is on
// it, so they are kept only for devices that are not personally owned and
// whose class's policy shows diagnostics; domain and code always stay.
func TestErrorChainText(t *testing.T) {
	storetest.ForEachEngine(t, testErrorChainText)
}

// failProfileList has enrolled device d take its initial inventory, then
// answer a ProfileList with Error and chain; it returns the command's ID.
func failProfileList(t *testing.T, f *fixture, d *sim.Device, dev store.Device, chain []map[string]any) string {
	t.Helper()
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ProfileList{}, "", admin); err != nil {
		t.Fatal(err)
	}
	sent := command(t, d, map[string]any{"Status": "Idle"})
	if _, err := d.Send(f.ctx, map[string]any{"Status": "Error", "CommandUUID": sent.CommandUUID, "ErrorChain": chain}); err != nil {
		t.Fatal(err)
	}
	return sent.CommandUUID
}

func testErrorChainText(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	for _, o := range []privacy.Ownership{privacy.Corporate, privacy.Personal, privacy.Shared} {
		f.publish(o)
	}
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	const text = "The profile “Erika's family VPN” could not be removed."
	failed := func(o privacy.Ownership) string {
		t.Helper()
		subject := ""
		if o.PersonallyOwned() {
			subject = erika
		}
		d, dev := f.enrolled(ts, o, subject)
		id := failProfileList(t, f, d, dev, []map[string]any{
			{"ErrorCode": 4001, "ErrorDomain": "MCProfileErrorDomain", "LocalizedDescription": text, "USEnglishDescription": text},
			{"ErrorCode": 12, "ErrorDomain": "MCInstallationErrorDomain", "USEnglishDescription": text}})
		cmd, err := f.st.Read().Commands().Get(f.ctx, f.tenant, id)
		if err != nil || cmd.State != store.CommandError {
			t.Fatalf("%s: %+v, %v", o, cmd, err)
		}
		var chain []mdmproto.ErrorChainItem
		if err := json.Unmarshal([]byte(cmd.ErrorChain), &chain); err != nil || len(chain) != 2 ||
			chain[0].ErrorDomain != "MCProfileErrorDomain" || chain[0].ErrorCode != 4001 || chain[1].ErrorCode != 12 {
			t.Errorf("%s: the error chain %s (%v) lost its domains or codes", o, cmd.ErrorChain, err)
		}
		return cmd.ErrorChain
	}

	// The default policy hides corporate diagnostics: hidden data is seen
	// only after a reason is given, which error text has no way to ask.
	if chain := failed(privacy.Corporate); strings.Contains(chain, "Erika") {
		t.Errorf("a corporate device's error description was stored though the policy hides diagnostics: %s", chain)
	}
	setDiagnostics(t, f, privacy.Corporate, privacy.Show)
	if chain := failed(privacy.Corporate); strings.Count(chain, "Erika") != 2 {
		t.Errorf("a corporate device's error descriptions were not kept where the policy shows diagnostics: %s", chain)
	}
	if chain := failed(privacy.Personal); strings.Contains(chain, "Erika") {
		t.Errorf("a personal device's error description was stored: %s", chain)
	} else if got := mdm.ErrorSummary(chain); got != "MCProfileErrorDomain error 4001" {
		t.Errorf("a personal device's error reads %q", got)
	}
	// The default policy drops shared devices' diagnostics; a corporate
	// class whose diagnostics the tenant drops keeps no text either.
	if chain := failed(privacy.Shared); strings.Contains(chain, "Erika") {
		t.Errorf("a shared device's error description was stored against the policy: %s", chain)
	}
	setDiagnostics(t, f, privacy.Corporate, privacy.Drop)
	if chain := failed(privacy.Corporate); strings.Contains(chain, "Erika") {
		t.Errorf("a corporate device's error description was stored though the policy drops diagnostics: %s", chain)
	}
}

// setDiagnostics sets the mode of usage logs in the tenant's policy for o.
func setDiagnostics(t *testing.T, f *fixture, o privacy.Ownership, mode privacy.Mode) {
	t.Helper()
	err := f.st.Tx(f.ctx, func(q store.Queries) error {
		s, version, err := privacy.LoadSettings(f.ctx, q, f.tenant)
		if err != nil {
			return err
		}
		if s.Policy, _, err = s.Policy.Apply([]privacy.Change{{Ownership: o, Category: privacy.UsageLogs, Mode: mode}}); err != nil {
			return err
		}
		return privacy.SaveSettings(f.ctx, q, f.tenant, s, version, f.now)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLocatingFollowsThePolicy: a corporate device is located only where
// the policy collects its location; where it drops it, the device is not
// asked (it would still send where it is), and the notice does not promise
// locating.
func TestLocatingFollowsThePolicy(t *testing.T) {
	phone, supervised := store.Device{Platform: "ios", Ownership: string(privacy.Corporate)}, mdm.DeviceFacts{Supervised: true}
	settings := privacy.Settings{Policy: privacy.DefaultPolicy()}
	if _, err := mdm.RequestFor(mdmproto.DeviceLocation{}, phone, settings, supervised); err != nil {
		t.Fatalf("locating under the default policy, which hides the location: %v", err)
	}
	if !strings.Contains(privacy.PlainSummary(settings, privacy.Corporate), "Locate a supervised") {
		t.Error("the default corporate notice does not say the device can be located")
	}
	corporate := settings.Policy[privacy.Corporate]
	corporate.Modes = maps.Clone(corporate.Modes)
	corporate.Modes[privacy.Location] = privacy.Drop
	settings.Policy = maps.Clone(settings.Policy)
	settings.Policy[privacy.Corporate] = corporate
	_, err := mdm.RequestFor(mdmproto.DeviceLocation{}, phone, settings, supervised)
	if e := apperr.As(err); e == nil || e.Details["reason"] != mdm.SkipPolicy {
		t.Errorf("locating where the policy drops the location: %v, want refused by the policy", err)
	}
	if _, err := mdm.RequestFor(mdmproto.EnableLostMode{Message: "Please return this phone"}, phone, settings, supervised); err != nil {
		t.Errorf("lost mode where no location is collected: %v", err)
	}
	if strings.Contains(privacy.PlainSummary(settings, privacy.Corporate), "Locate") {
		t.Error("the notice promises locating where no location is collected")
	}
}
