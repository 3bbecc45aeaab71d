package mdm_test

import (
	"maps"
	"reflect"
	"slices"
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

// TestOSVersionMinimums: a command the device's OS version predates
// (Apple's schema, introduced) is refused as unsupported, saying which
// version it needs, and so is a value it predates (an OS update's install
// action); a key it predates is left out, as is one that does not apply
// (MaxUserDeferrals but with InstallLater), except a key that narrows a
// list, without which the device would list everything. An
// unknown version refuses nothing (the device answers Error to what it
// predates); a device of unknown platform is asked only what it is.
// Telephony queries a command names, deprecated since iOS 16 but not
// removed, are still asked of iPhones as named (the inventory's own are
// TestTelephonyQueriesByVersion's); a Mac is asked none.
func TestOSVersionMinimums(t *testing.T) {
	macOn := func(v string) store.Device {
		return store.Device{Platform: "macos", Ownership: "corporate", OSVersion: v}
	}
	phoneOn := func(v string) store.Device {
		return store.Device{Platform: "ios", Ownership: "corporate", OSVersion: v}
	}
	everything := privacy.Settings{Policy: privacy.DefaultPolicy()}
	corporate := everything.Policy[privacy.Corporate]
	corporate.FullWipe = true
	everything.Policy[privacy.Corporate] = corporate
	supervisedFacts := mdm.DeviceFacts{Supervised: true}
	update := func(u mdmproto.OSUpdate) mdmproto.ScheduleOSUpdate {
		return mdmproto.ScheduleOSUpdate{Updates: []mdmproto.OSUpdate{u}}
	}

	refused := []struct {
		name string
		req  mdmproto.Request
		d    store.Device
		says string
	}{
		{"ManagedApplicationList on macOS 10.15", mdmproto.ManagedApplicationList{}, macOn("10.15.7"), "macOS 11.0 or later"},
		{"RemoveApplication on macOS 10.15", mdmproto.RemoveApplication{Identifier: "com.example.a"}, macOn("10.15.7"), "macOS 11.0"},
		{"RestartDevice on iOS 10.2", mdmproto.RestartDevice{}, phoneOn("10.2"), "iOS 10.3 or later"},
		{"anything but inventory to a device of unknown platform", mdmproto.DeviceLock{}, store.Device{Ownership: "corporate"}, "whether it is an iPhone, iPad or Mac"},
		{"lost mode on iOS 9.2", mdmproto.EnableLostMode{Message: "Call IT"}, phoneOn("9.2"), "iOS 9.3"},
		{"ProductVersion on macOS 11.6", update(mdmproto.OSUpdate{ProductVersion: "12.0.1", InstallAction: "Default"}), macOn("11.6"), "ProductKey"},
		{"DownloadOnly on macOS 10.15", update(mdmproto.OSUpdate{ProductKey: "MSU_UPDATE_20G224", InstallAction: "DownloadOnly"}), macOn("10.15.7"),
			"install action DownloadOnly needs macOS 11.0"},
		{"InstallForceRestart on macOS 10.15", update(mdmproto.OSUpdate{ProductKey: "MSU_UPDATE_20G224", InstallAction: "InstallForceRestart"}),
			macOn("10.15.7"), "install action InstallForceRestart needs macOS 11.0"},
		{"managed profiles on a personal iOS 12", mdmproto.ProfileList{}, store.Device{Platform: "ios", Ownership: "personal", OSVersion: "12.4"}, "iOS 13.0"},
		{"managed certificates on a personal macOS 10.14", mdmproto.CertificateList{}, store.Device{Platform: "macos", Ownership: "personal", OSVersion: "10.14.6"}, "macOS 10.15"},
	}
	for _, c := range refused {
		_, err := mdm.RequestFor(c.req, c.d, everything, supervisedFacts)
		if !apperr.IsKind(err, apperr.KindConflict) || apperr.As(err).Details["reason"] != mdm.SkipUnsupported || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v; want refused as unsupported, saying %q", c.name, err, c.says)
		}
	}

	taken := []struct {
		name string
		req  mdmproto.Request
		d    store.Device
		want mdmproto.Request
	}{
		{"ManagedApplicationList on macOS 11.0", mdmproto.ManagedApplicationList{}, macOn("11.0"), mdmproto.ManagedApplicationList{}},
		{"NotifyUser on macOS 11.3", mdmproto.RestartDevice{NotifyUser: true}, macOn("11.3"), mdmproto.RestartDevice{}},
		{"NotifyUser on macOS 11.4", mdmproto.RestartDevice{NotifyUser: true}, macOn("11.4"), mdmproto.RestartDevice{NotifyUser: true}},
		{"lock keys on macOS 11.4", mdmproto.DeviceLock{Message: "Call IT", PhoneNumber: "+49 30 1234", PIN: "123456"}, macOn("11.4"),
			mdmproto.DeviceLock{Message: "Call IT", PIN: "123456"}},
		{"lock on an unknown iOS", mdmproto.DeviceLock{Message: "Call IT"}, phoneOn(""), mdmproto.DeviceLock{Message: "Call IT"}},
		{"RestartDevice on an unknown iOS", mdmproto.RestartDevice{}, phoneOn(""), mdmproto.RestartDevice{}},
		{"managed profiles on a personal iPhone of unknown version", mdmproto.ProfileList{}, store.Device{Platform: "ios", Ownership: "personal"},
			mdmproto.ProfileList{ManagedOnly: true}},
		{"erase on macOS 11.7", mdmproto.EraseDevice{PIN: "123456", ObliterationBehavior: "Default"}, macOn("11.7"), mdmproto.EraseDevice{PIN: "123456"}},
		{"erase on iOS 11.2", mdmproto.EraseDevice{PreserveDataPlan: true, DisallowProximitySetup: true}, phoneOn("11.2"), mdmproto.EraseDevice{PreserveDataPlan: true}},
		{"update keys on macOS 12.1", update(mdmproto.OSUpdate{ProductKey: "MSU_UPDATE_21C52", InstallAction: "InstallLater", MaxUserDeferrals: 3, Priority: "High"}),
			macOn("12.1"), update(mdmproto.OSUpdate{ProductKey: "MSU_UPDATE_21C52", InstallAction: "InstallLater", MaxUserDeferrals: 3})},
		{"MaxUserDeferrals without InstallLater on macOS 13", update(mdmproto.OSUpdate{ProductKey: "MSU_UPDATE_22G90", InstallAction: "InstallASAP", MaxUserDeferrals: 3}),
			macOn("13.5"), update(mdmproto.OSUpdate{ProductKey: "MSU_UPDATE_22G90", InstallAction: "InstallASAP"})},
		{"InstallLater on macOS 13", update(mdmproto.OSUpdate{ProductKey: "MSU_UPDATE_22G90", InstallAction: "InstallLater", MaxUserDeferrals: 3}),
			macOn("13.5"), update(mdmproto.OSUpdate{ProductKey: "MSU_UPDATE_22G90", InstallAction: "InstallLater", MaxUserDeferrals: 3})},
		{"InstallForceRestart on macOS 11.0", update(mdmproto.OSUpdate{ProductKey: "MSU_UPDATE_20A2411", InstallAction: "InstallForceRestart"}),
			macOn("11.0"), update(mdmproto.OSUpdate{ProductKey: "MSU_UPDATE_20A2411", InstallAction: "InstallForceRestart"})},
		{"DownloadOnly on an unknown macOS", update(mdmproto.OSUpdate{ProductKey: "MSU_UPDATE_20A2411", InstallAction: "DownloadOnly"}),
			macOn(""), update(mdmproto.OSUpdate{ProductKey: "MSU_UPDATE_20A2411", InstallAction: "DownloadOnly"})},
		{"ManagementFlags on macOS 10.15", mdmproto.InstallApplication{ITunesStoreID: 1, ManagementFlags: 1}, macOn("10.15.7"),
			mdmproto.InstallApplication{ITunesStoreID: 1, PurchaseMethod: mdmproto.PurchaseVPP}},
		{"a managed app on macOS 11.0", mdmproto.InstallApplication{ITunesStoreID: 1, ManagementFlags: 1}, macOn("11.0"),
			mdmproto.InstallApplication{ITunesStoreID: 1, ManagementFlags: 1, PurchaseMethod: mdmproto.PurchaseVPP, InstallAsManaged: true}},
		{"a managed app on an unknown macOS", mdmproto.InstallApplication{ITunesStoreID: 1, ManagementFlags: 1}, macOn(""),
			mdmproto.InstallApplication{ITunesStoreID: 1, ManagementFlags: 1, PurchaseMethod: mdmproto.PurchaseVPP, InstallAsManaged: true}},
		{"a package on macOS 14", mdmproto.InstallApplication{ManifestURL: "https://apps.example.com/m.plist", ManagementFlags: 1}, macOn("14.5"),
			mdmproto.InstallApplication{ManifestURL: "https://apps.example.com/m.plist"}},
	}
	for _, c := range taken {
		got, err := mdm.RequestFor(c.req, c.d, everything, supervisedFacts)
		if err != nil || !equalRequests(got, c.want) {
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}

	queries := []string{"BatteryLevel", "IMEI", "IsSupervised", "OSVersion", "PhoneNumber"}
	for _, c := range []struct {
		d    store.Device
		want []string
	}{
		{macOn("12.6"), []string{"IsSupervised", "OSVersion"}},
		{macOn("13.3"), []string{"BatteryLevel", "IsSupervised", "OSVersion"}},
		{phoneOn("17.2"), queries},
		{phoneOn(""), queries},
		{store.Device{Ownership: "corporate"}, append(slices.Clone(queries), "ProductName", "Model")}, // asked what it is
	} {
		got, err := mdm.RequestFor(mdmproto.DeviceInformation{Queries: queries}, c.d, everything, mdm.DeviceFacts{})
		if err != nil || !slices.Equal(got.(mdmproto.DeviceInformation).Queries, c.want) {
			t.Errorf("DeviceInformation to %s %q: %+v, %v; want %v", c.d.Platform, c.d.OSVersion, got, err, c.want)
		}
	}
}

// equalRequests compares two requests field by field.
func equalRequests(a, b mdmproto.Request) bool { return reflect.DeepEqual(a, b) }

// TestOlderSystemsGetWhatTheyTake: through simulated Macs, which refuse on
// their own what their version predates: ManagedApplicationList is not
// queued for macOS 10.15, and RestartDevice reaches macOS 11.2 without
// NotifyUser (11.4), so the device carries it out rather than answer
// Error; macOS 11.4 gets the key.
func TestOlderSystemsGetWhatTheyTake(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		on := func(v string) func(*sim.Device) { return func(d *sim.Device) { d.OSVersion = v } }
		catalinaSim, catalina := f.polled(ts, privacy.Corporate, "", mac, on("10.15.7"))
		bigSurSim, bigSur := f.polled(ts, privacy.Corporate, "", mac, on("11.2"))
		laterSim, later := f.polled(ts, privacy.Corporate, "", mac, on("11.4"))

		_, skipped, err := f.svc.EnqueueBulk(f.ctx, f.tenant, []string{catalina.ID, bigSur.ID}, mdmproto.ManagedApplicationList{}, "a reason", admin)
		if err != nil || len(skipped) != 1 || skipped[0].DeviceID != catalina.ID || skipped[0].Reason != mdm.SkipUnsupported {
			t.Errorf("ManagedApplicationList to macOS 10.15 and 11.2: skipped %+v, %v; want macOS 10.15 skipped as unsupported", skipped, err)
		}
		cmds, _, err := f.svc.EnqueueBulk(f.ctx, f.tenant, []string{bigSur.ID, later.ID}, mdmproto.RestartDevice{NotifyUser: true}, "a reason", admin)
		if err != nil || len(cmds) != 2 {
			t.Fatalf("RestartDevice: %v, %v", cmds, err)
		}
		for _, c := range cmds {
			_, notify := f.sent(c)["NotifyUser"]
			if notify != (c.DeviceID == later.ID) {
				t.Errorf("RestartDevice to device %s sent NotifyUser: %v", c.DeviceID, notify)
			}
		}
		for _, d := range []*sim.Device{catalinaSim, bigSurSim, laterSim} {
			if _, err := d.Poll(f.ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{catalina.ID, bigSur.ID, later.ID} {
			for rt, state := range f.commandsOf(id) {
				if state != store.CommandAcknowledged {
					t.Errorf("device %s: %s ended %s", id, rt, state)
				}
			}
		}
	})
}

// TestTelephonyQueriesByVersion: Apple deprecated the telephony queries in
// iOS 16 for ServiceSubscriptions (information.device.yaml). The
// inventory's command asks an iPhone or iPad on iOS 16 or later (or of
// unknown version) for ServiceSubscriptions in place of them, and an
// earlier one, a device of unknown platform or a Mac, what it was asked
// before. Either way it asks for exactly the telephony fields it asked
// for before, for every ownership: none where the policy drops them or
// Apple keeps them from User Enrollment, and the deprecated queries where
// a personal device's enrolment lacks the network information right
// ServiceSubscriptions needs. A command naming the deprecated queries is
// sent them as named.
func TestTelephonyQueriesByVersion(t *testing.T) {
	deprecated := []string{"CurrentCarrierNetwork", "ICCID", "IMEI", "MEID", "PhoneNumber"}
	everyTelephonyQuery := append(slices.Clone(deprecated), "ServiceSubscriptions")
	telephony := func(queries []string) []string {
		return slices.DeleteFunc(slices.Clone(queries), func(q string) bool { return !slices.Contains(everyTelephonyQuery, q) })
	}
	// fieldsOf names the catalogue fields a query set asks for.
	fieldsOf := func(queries []string) []string {
		var out []string
		for _, f := range privacy.Catalogue {
			for _, src := range f.Sources {
				if src.Payload == "DeviceInformation" && slices.Contains(queries, src.Key) && !slices.Contains(out, f.Key) {
					out = append(out, f.Key)
				}
			}
		}
		return out
	}
	withTelephony := privacy.Settings{Policy: privacy.DefaultPolicy()}
	for _, o := range []privacy.Ownership{privacy.Personal, privacy.UserEnrolled} {
		cp := withTelephony.Policy[o]
		cp.Modes = maps.Clone(cp.Modes)
		cp.Modes[privacy.Telephony] = privacy.Show
		withTelephony.Policy[o] = cp
	}
	device := func(platform, o, version string) store.Device {
		return store.Device{Platform: platform, Ownership: o, OSVersion: version}
	}
	noNetwork := mdm.DeviceFacts{GrantedRights: mdmproto.AccessDeviceInformation | mdmproto.AccessDeviceLock}
	withNetwork := mdm.DeviceFacts{GrantedRights: noNetwork.GrantedRights | mdmproto.AccessNetworkInformation}
	for _, c := range []struct {
		name     string
		settings privacy.Settings
		d        store.Device
		facts    mdm.DeviceFacts
		want     []string // the telephony queries asked
	}{
		{"a corporate iPhone on iOS 15.8", withTelephony, device("ios", "corporate", "15.8"), mdm.DeviceFacts{}, deprecated},
		{"a corporate iPhone on iOS 16.0", withTelephony, device("ios", "corporate", "16.0"), mdm.DeviceFacts{}, []string{"ServiceSubscriptions"}},
		{"a corporate iPad on iPadOS 17.5", withTelephony, device("ipados", "corporate", "17.5"), mdm.DeviceFacts{}, []string{"ServiceSubscriptions"}},
		{"a shared iPad on iPadOS 18", withTelephony, device("ipados", "shared", "18.1"), mdm.DeviceFacts{}, []string{"ServiceSubscriptions"}},
		{"an iPhone of unknown version", withTelephony, device("ios", "corporate", ""), mdm.DeviceFacts{}, []string{"ServiceSubscriptions"}},
		{"a device of unknown platform", withTelephony, device("", "corporate", "17.5"), mdm.DeviceFacts{}, deprecated},
		{"a corporate Mac", withTelephony, device("macos", "corporate", "15.1"), mdm.DeviceFacts{}, nil},
		{"a personal iPhone by default", privacy.Settings{Policy: privacy.DefaultPolicy()}, device("ios", "personal", "18.1"), withNetwork, nil},
		{"a personal iPhone, telephony allowed", withTelephony, device("ios", "personal", "18.1"), withNetwork, deprecated},
		{"a personal iPhone on iOS 15, telephony allowed", withTelephony, device("ios", "personal", "15.8"), withNetwork, deprecated},
		{"a personal iPhone without the network right", withTelephony, device("ios", "personal", "18.1"), noNetwork, []string{"IMEI", "MEID"}},
		{"a User Enrollment, telephony allowed", withTelephony, device("ios", "user_enrolled", "18.1"), mdm.DeviceFacts{}, nil},
	} {
		got, err := mdm.RequestFor(mdmproto.DeviceInformation{}, c.d, c.settings, c.facts)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		queries := got.(mdmproto.DeviceInformation).Queries
		if asked := telephony(queries); !slices.Equal(asked, c.want) {
			t.Errorf("%s: asked %v, want %v", c.name, asked, c.want)
		}
		// The same fields as the same device before iOS 16 is asked for.
		before := c.d
		before.OSVersion = "15.8"
		then, err := mdm.RequestFor(mdmproto.DeviceInformation{}, before, c.settings, c.facts)
		if err != nil {
			t.Fatalf("%s on iOS 15.8: %v", c.name, err)
		}
		if now, was := fieldsOf(queries), fieldsOf(then.(mdmproto.DeviceInformation).Queries); !slices.Equal(now, was) {
			t.Errorf("%s: asks for %v, and for %v before iOS 16", c.name, now, was)
		}
	}

	// Named by a command: as named, within the policy, the ownership and
	// Apple's versions.
	phone := device("ios", "corporate", "17.5")
	for _, c := range []struct {
		d       store.Device
		queries []string
		want    []string
	}{
		{phone, []string{"IMEI", "OSVersion"}, []string{"IMEI", "OSVersion"}},
		{phone, []string{"IMEI", "ServiceSubscriptions"}, []string{"ServiceSubscriptions"}},
		{device("ios", "corporate", "15.8"), []string{"IMEI", "ServiceSubscriptions"}, []string{"IMEI"}},
		{device("ios", "corporate", "14.8"), []string{"ServiceSubscriptions"}, []string{"ServiceSubscriptions"}},
		// A personal device is never asked it: every line it has would come.
		{device("ios", "personal", "18.1"), []string{"ServiceSubscriptions"}, deprecated},
		{device("ios", "personal", "18.1"), []string{"OSVersion", "ServiceSubscriptions"}, append([]string{"OSVersion"}, deprecated...)},
	} {
		got, err := mdm.RequestFor(mdmproto.DeviceInformation{Queries: c.queries}, c.d, withTelephony, mdm.DeviceFacts{})
		if err != nil || !slices.Equal(got.(mdmproto.DeviceInformation).Queries, c.want) {
			t.Errorf("%v to iOS %s: %+v, %v; want %v", c.queries, c.d.OSVersion, got, err, c.want)
		}
	}
	for _, v := range []string{"11.4", "15.1"} { // ServiceSubscriptions came in iOS 12; a Mac has none
		d := device("ios", "corporate", v)
		if v == "15.1" {
			d.Platform = "macos"
		}
		if _, err := mdm.RequestFor(mdmproto.DeviceInformation{Queries: []string{"ServiceSubscriptions"}}, d, withTelephony, mdm.DeviceFacts{}); !apperr.IsKind(err, apperr.KindConflict) {
			t.Errorf("ServiceSubscriptions alone to %s %s: %v, want refused as unsupported", d.Platform, v, err)
		}
	}
}
