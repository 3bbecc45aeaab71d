package mdm_test

import (
	"reflect"
	"testing"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

const (
	crmStoreID          = 361309726
	expensesManifestURL = "https://apps.example.com/expenses/manifest.plist"
)

// managedOnMac is the InstallApplication a Mac from macOS 11 (not by User
// Enrollment) must get to install an app as the organisation's: managed,
// so that it leaves with the management profile, and from the App Store
// as an Apps and Books assignment, the only purchase method macOS takes.
func managedOnMac(source map[string]any) map[string]any {
	want := map[string]any{"RequestType": "InstallApplication", "ManagementFlags": uint64(1), "InstallAsManaged": true}
	for k, v := range source {
		want[k] = v
	}
	if _, fromStore := source["iTunesStoreID"]; fromStore {
		want["Options"] = map[string]any{"PurchaseMethod": uint64(1)}
	}
	return want
}

// TestAppsOnMacsInstallAsManaged: every app Steward installs is to be a
// managed app, which retiring the device removes with its data, and which
// RemoveApplication and ManagedApplicationList reach. A Mac manages an app
// only when told (InstallAsManaged, macOS 11), which removal with the
// profile (ManagementFlags 1) needs there, and installs App Store apps
// only as Apps and Books assignments (purchase method 0 is iOS's). iOS
// manages what MDM installs and has no InstallAsManaged. On a Mac, User
// Enrollment forbids both keys, and before macOS 11 there are no managed
// apps: the app goes unmanaged, without them. A package from a manifest
// goes unmanaged too: a Mac refuses one as managed unless it meets
// Apple's criteria, which Steward cannot tell.
func TestAppsOnMacsInstallAsManaged(t *testing.T) {
	fromStore := mdmproto.InstallApplication{ITunesStoreID: crmStoreID, ManagementFlags: mdmproto.ManagementFlagRemoveWithMDM}
	inHouse := mdmproto.InstallApplication{ManifestURL: expensesManifestURL, ManagementFlags: mdmproto.ManagementFlagRemoveWithMDM}
	storeSource := map[string]any{"iTunesStoreID": uint64(crmStoreID)}
	on := func(platform string, o privacy.Ownership, version string) store.Device {
		return store.Device{Platform: platform, Ownership: string(o), OSVersion: version}
	}
	for _, c := range []struct {
		name string
		d    store.Device
		app  mdmproto.InstallApplication
		want map[string]any
	}{
		{"App Store app to a corporate Mac on macOS 14", on("macos", privacy.Corporate, "14.5"), fromStore, managedOnMac(storeSource)},
		{"in-house app to a corporate Mac on macOS 14", on("macos", privacy.Corporate, "14.5"), inHouse, map[string]any{"RequestType": "InstallApplication", "ManifestURL": expensesManifestURL}},
		{"App Store app to a personal Mac on macOS 14", on("macos", privacy.Personal, "14.5"), fromStore, managedOnMac(storeSource)},
		{"in-house app to a Mac of unknown version", on("macos", privacy.Corporate, ""), inHouse, map[string]any{"RequestType": "InstallApplication", "ManifestURL": expensesManifestURL}},
		{"App Store app to a Mac on macOS 10.15", on("macos", privacy.Corporate, "10.15.7"), fromStore,
			map[string]any{"RequestType": "InstallApplication", "iTunesStoreID": uint64(crmStoreID), "Options": map[string]any{"PurchaseMethod": uint64(1)}}},
		{"in-house app to a Mac on macOS 10.15", on("macos", privacy.Corporate, "10.15.7"), inHouse,
			map[string]any{"RequestType": "InstallApplication", "ManifestURL": expensesManifestURL}},
		{"App Store app to a corporate iPhone", on("ios", privacy.Corporate, "17.5"), fromStore,
			map[string]any{"RequestType": "InstallApplication", "iTunesStoreID": uint64(crmStoreID), "ManagementFlags": uint64(1)}},
		{"in-house app to a corporate iPad", on("ipados", privacy.Corporate, "17.5"), inHouse,
			map[string]any{"RequestType": "InstallApplication", "ManifestURL": expensesManifestURL, "ManagementFlags": uint64(1)}},
		{"asked as managed, to an iPhone", on("ios", privacy.Corporate, "17.5"), mdmproto.InstallApplication{ITunesStoreID: crmStoreID, InstallAsManaged: true},
			map[string]any{"RequestType": "InstallApplication", "iTunesStoreID": uint64(crmStoreID)}},
	} {
		r, err := mdm.RequestFor(c.app, c.d, privacy.Settings{}, mdm.DeviceFacts{})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		built, err := mdmproto.Build("0F4C1A5E-2D3B-4C5D-8E9F-0A1B2C3D4E5F", r)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var envelope struct{ Command map[string]any }
		if _, err := plist.Unmarshal(built.Plist(), &envelope); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(envelope.Command, c.want) {
			t.Errorf("%s: sent\n %v\nwant\n %v", c.name, envelope.Command, c.want)
		}
	}
	// An app a personally owned Mac would install unmanaged would stay on
	// it, with its data, after the Mac leaves management: it is not sent.
	for _, c := range []struct {
		name string
		d    store.Device
		app  mdmproto.InstallApplication
	}{
		{"App Store app to a user-enrolled Mac", on("macos", privacy.UserEnrolled, "14.5"), fromStore},
		{"in-house app to a personal Mac on macOS 14", on("macos", privacy.Personal, "14.5"), inHouse},
		{"App Store app to a personal Mac on macOS 10.15", on("macos", privacy.Personal, "10.15.7"), fromStore},
	} {
		r, err := mdm.RequestFor(c.app, c.d, privacy.Settings{}, mdm.DeviceFacts{})
		if e := apperr.As(err); e == nil || e.Kind != apperr.KindForbidden || e.Details["reason"] != mdm.SkipOwnership {
			t.Errorf("%s: sent %+v, %v; want refused for its ownership", c.name, r, err)
		}
	}
}

// TestRequiredAppsReachAMacAsManagedApps: the required apps of a group
// reach its corporate Mac on macOS 14, from the App Store as managed Apps
// and Books assignments, a package as it is, and its iPhone without the
// macOS key; the
// simulated devices, which refuse what their systems refuse, install them.
func TestRequiredAppsReachAMacAsManagedApps(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		sonoma := func(d *sim.Device) { d.OSVersion = "14.5" }
		macSim, macDev := f.polled(ts, privacy.Corporate, "", mac, sonoma)
		phoneSim, phone := f.polled(ts, privacy.Corporate, "")

		fleet := device.New(f.st, f.priv, f.svc, f.sealer, nil)
		g, err := fleet.CreateGroup(f.ctx, f.tenant, device.GroupInput{Name: "Sales", Kind: store.GroupStatic}, admin)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range []device.AppInput{
			{Identifier: "com.example.crm", Name: "CRM", Kind: store.AppApproved, StoreID: crmStoreID},
			{Identifier: "com.example.expenses", Name: "Expenses", Kind: store.AppApproved, ManifestURL: expensesManifestURL},
		} {
			a, err := fleet.CreateApp(f.ctx, f.tenant, in, admin)
			if err != nil {
				t.Fatal(err)
			}
			if err := fleet.AssignApp(f.ctx, f.tenant, a.ID, g.ID, store.AppRequired, admin); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := fleet.ChangeMembers(f.ctx, f.tenant, g.ID, []string{macDev.ID, phone.ID}, nil, admin); err != nil {
			t.Fatal(err)
		}

		storeSource := map[string]any{"iTunesStoreID": uint64(crmStoreID)}
		for _, c := range []struct {
			dev  store.Device
			want []map[string]any
		}{
			{macDev, []map[string]any{managedOnMac(storeSource), map[string]any{"RequestType": "InstallApplication", "ManifestURL": expensesManifestURL}}},
			{phone, []map[string]any{
				{"RequestType": "InstallApplication", "iTunesStoreID": uint64(crmStoreID), "ManagementFlags": uint64(1)},
				{"RequestType": "InstallApplication", "ManifestURL": expensesManifestURL, "ManagementFlags": uint64(1)}}},
		} {
			installs := f.installsQueuedFor(c.dev.ID)
			if len(installs) != len(c.want) {
				t.Fatalf("%s: %d InstallApplication queued, want %d", c.dev.Platform, len(installs), len(c.want))
			}
			for _, want := range c.want {
				_, fromStore := want["iTunesStoreID"]
				var got map[string]any
				for _, cmd := range installs {
					if sent := f.sent(cmd); (sent["iTunesStoreID"] != nil) == fromStore {
						got = sent
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s was sent\n %v\nwant\n %v", c.dev.Platform, got, want)
				}
			}
		}

		for _, d := range []*sim.Device{macSim, phoneSim} {
			if _, err := d.Poll(f.ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, dev := range []store.Device{macDev, phone} {
			for _, cmd := range f.installsQueuedFor(dev.ID) {
				if got, _ := f.st.Read().Commands().Get(f.ctx, f.tenant, cmd.ID); got.State != store.CommandAcknowledged {
					t.Errorf("%s: a required app's install ended %s (%s)", dev.Platform, got.State, mdm.ErrorSummary(got.ErrorChain))
				}
			}
		}
	})
}

// installsQueuedFor lists the InstallApplication commands of a device.
func (f *fixture) installsQueuedFor(deviceID string) []store.Command {
	f.t.Helper()
	cmds, err := f.st.Read().Commands().List(f.ctx, f.tenant, deviceID, store.Page{Limit: 100})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []store.Command
	for _, c := range cmds {
		if c.RequestType == string(mdmproto.RequestInstallApplication) {
			out = append(out, c)
		}
	}
	return out
}
