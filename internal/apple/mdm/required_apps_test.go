package mdm_test

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// appsFleet is the device service over the fixture, with its catalogue.
type appsFleet struct {
	*fixture
	fleet *device.Service
}

func newAppsFleet(t *testing.T, st store.Store) *appsFleet {
	f := newFixture(t, st)
	return &appsFleet{fixture: f, fleet: device.New(f.st, f.priv, f.svc, f.sealer, nil)}
}

func (f *appsFleet) group(name string, members ...string) string {
	f.t.Helper()
	g, err := f.fleet.CreateGroup(f.ctx, f.tenant, device.GroupInput{Name: name, Kind: store.GroupStatic}, admin)
	if err != nil {
		f.t.Fatal(err)
	}
	f.members(g.ID, members, nil)
	return g.ID
}

func (f *appsFleet) members(groupID string, add, remove []string) {
	f.t.Helper()
	if len(add) == 0 && len(remove) == 0 {
		return
	}
	if _, _, err := f.fleet.ChangeMembers(f.ctx, f.tenant, groupID, add, remove, admin); err != nil {
		f.t.Fatal(err)
	}
}

func (f *appsFleet) app(in device.AppInput) string {
	f.t.Helper()
	in.Kind = store.AppApproved
	a, err := f.fleet.CreateApp(f.ctx, f.tenant, in, admin)
	if err != nil {
		f.t.Fatal(err)
	}
	return a.ID
}

func (f *appsFleet) assign(appID, groupID, mode string) {
	f.t.Helper()
	if err := f.fleet.AssignApp(f.ctx, f.tenant, appID, groupID, mode, admin); err != nil {
		f.t.Fatal(err)
	}
}

// installStates counts a device's InstallApplication commands by state.
func (f *appsFleet) installStates(deviceID string) map[string]int {
	f.t.Helper()
	out := map[string]int{}
	for _, c := range f.installsQueuedFor(deviceID) {
		out[c.State]++
	}
	return out
}

var (
	crmApp      = device.AppInput{Identifier: "com.example.crm", Name: "CRM", StoreID: crmStoreID}
	expensesApp = device.AppInput{Identifier: "com.example.expenses", Name: "Expenses", ManifestURL: expensesManifestURL}
)

// TestRequiredAppsQueuedOnce: a required app is queued once while its
// install is open, however often the device's groups or the assignments
// change meanwhile.
func TestRequiredAppsQueuedOnce(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newAppsFleet(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		_, macDev := f.polled(ts, privacy.Corporate, "", mac, func(d *sim.Device) { d.OSVersion = "14.5" })
		_, phone := f.polled(ts, privacy.Corporate, "")

		sales := f.group("Sales")
		crm, expenses := f.app(crmApp), f.app(expensesApp)
		f.assign(crm, sales, store.AppRequired)
		f.assign(expenses, sales, store.AppRequired)
		f.members(sales, []string{macDev.ID, phone.ID}, nil)
		if got := f.installStates(macDev.ID); got[store.CommandQueued] != 2 || len(got) != 1 {
			t.Fatalf("the Mac's installs after it joined: %v; want 2 queued", got)
		}

		// An unrelated group's membership, and the same assignment again.
		f.group("Lobby", macDev.ID, phone.ID)
		f.assign(crm, sales, store.AppRequired)
		for _, d := range []store.Device{macDev, phone} {
			if got := f.installStates(d.ID); got[store.CommandQueued] != 2 || len(got) != 1 {
				t.Errorf("%s: installs after more changes: %v; want the 2 first ones only", d.Platform, got)
			}
		}
	})
}

// TestOneRefusedAppHoldsBackNoOther: a personally owned Mac cannot take
// a package (it would stay there, unmanaged, after the Mac leaves), but
// the App Store app its group requires too still reaches it.
func TestOneRefusedAppHoldsBackNoOther(t *testing.T) {
	f := newAppsFleet(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	ts := f.serve()
	macSim, macDev := f.polled(ts, privacy.Personal, f.subject("erika@acme.test"), mac, func(d *sim.Device) { d.OSVersion = "14.5" })
	sales := f.group("Sales", macDev.ID)
	f.assign(f.app(expensesApp), sales, store.AppRequired)
	f.assign(f.app(crmApp), sales, store.AppRequired)

	installs := f.installsQueuedFor(macDev.ID)
	if len(installs) != 1 {
		t.Fatalf("%d installs queued for the personal Mac, want the App Store app's", len(installs))
	}
	if sent := f.sent(installs[0]); sent["iTunesStoreID"] != uint64(crmStoreID) || sent["InstallAsManaged"] != true {
		t.Errorf("queued %v; want the App Store app, managed", sent)
	}
	if _, err := macSim.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
}

// TestInstallsOfAppsNoLongerRequiredAreCancelled: an app unassigned,
// assigned as available only, or deleted, or a device leaving the group
// that required it: its installs the device has not been handed are
// cancelled, unless another of the device's groups still requires it.
func TestInstallsOfAppsNoLongerRequiredAreCancelled(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newAppsFleet(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		_, phone := f.polled(ts, privacy.Corporate, "")
		sales, field := f.group("Sales", phone.ID), f.group("Field")
		crm := f.app(crmApp)
		want := func(step string, states map[string]int) {
			t.Helper()
			got := f.installStates(phone.ID)
			if len(got) != len(states) {
				t.Errorf("%s: installs %v, want %v", step, got, states)
			}
			for s, n := range states {
				if got[s] != n {
					t.Errorf("%s: installs %v, want %v", step, got, states)
				}
			}
		}

		f.assign(crm, sales, store.AppRequired)
		f.assign(crm, sales, "")
		want("unassigned", map[string]int{store.CommandCancelled: 1})
		for _, c := range f.installsQueuedFor(phone.ID) {
			if !strings.Contains(c.ErrorChain, "no group of the device requires the app") {
				t.Errorf("cancelled install's chain: %s", c.ErrorChain)
			}
		}

		f.assign(crm, sales, store.AppRequired)
		f.assign(crm, sales, store.AppAvailable)
		want("made available only", map[string]int{store.CommandCancelled: 2})

		f.assign(crm, sales, store.AppRequired)
		f.assign(crm, field, store.AppRequired)
		f.members(field, []string{phone.ID}, nil)
		f.assign(crm, sales, "")
		want("still required by another group", map[string]int{store.CommandCancelled: 2, store.CommandQueued: 1})
		f.members(field, nil, []string{phone.ID})
		want("left that group", map[string]int{store.CommandCancelled: 3})

		f.assign(crm, sales, store.AppRequired)
		if err := f.fleet.DeleteApp(f.ctx, f.tenant, crm, admin); err != nil {
			t.Fatal(err)
		}
		want("deleted", map[string]int{store.CommandCancelled: 4})

		// An install an admin sent stays: only Steward's own go.
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{phone.ID}, mdmproto.InstallApplication{ITunesStoreID: crmStoreID}, "asked", admin); err != nil {
			t.Fatal(err)
		}
		f.members(sales, nil, []string{phone.ID})
		want("an admin's install", map[string]int{store.CommandCancelled: 4, store.CommandQueued: 1})
	})
}

// TestSharedIPadAppsAsAssignments: a Shared iPad refuses App Store apps
// bought the free way (PurchaseMethodNotSupportedInMultiUser): it gets
// them as Apps and Books assignments; an iPad that is not shared, and an
// in-house app, as before.
func TestSharedIPadAppsAsAssignments(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	_, shared := f.polled(ts, privacy.Corporate, "", supervisedIPad(true))
	_, single := f.polled(ts, privacy.Corporate, "", supervisedIPad(false))
	for _, dev := range []string{shared.ID, single.ID} {
		// The version on the row, as device management keeps it: the
		// Shared iPad mode is read only for the commands that depend on it.
		if err := f.st.Tx(f.ctx, func(q store.Queries) error {
			return q.ManagedDevices().SetProjection(f.ctx, store.DeviceProjection{TenantID: f.tenant, DeviceID: dev, OSVersion: "18.1"})
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		dev    store.Device
		app    mdmproto.InstallApplication
		viaVPP bool
	}{
		{"App Store app to a Shared iPad", shared, mdmproto.InstallApplication{ITunesStoreID: crmStoreID}, true},
		{"App Store app to an iPad", single, mdmproto.InstallApplication{ITunesStoreID: crmStoreID}, false},
		{"in-house app to a Shared iPad", shared, mdmproto.InstallApplication{ManifestURL: expensesManifestURL}, false},
	} {
		cmds, err := f.svc.Enqueue(f.ctx, f.tenant, []string{c.dev.ID}, c.app, "", admin)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		options, _ := f.sent(cmds[0])["Options"].(map[string]any)
		if got := options["PurchaseMethod"] == uint64(1); got != c.viaVPP {
			t.Errorf("%s: Options %v; want an Apps and Books assignment: %v", c.name, options, c.viaVPP)
		}
	}
}
