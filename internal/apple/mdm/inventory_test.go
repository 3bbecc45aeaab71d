package mdm_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestManagedAppStatesReachTheInventory: a ManagedApplicationList answer is
// kept, through the gate, as apps.managed.
func TestManagedAppStatesReachTheInventory(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Corporate, "")
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ManagedApplicationList{}, "", admin); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	var apps []privacy.ManagedApp
	if err := json.Unmarshal(f.fields(dev.ID)["apps.managed"].Value, &apps); err != nil {
		t.Fatal(err)
	}
	if len(apps) != 10 || apps[0].ID != "com.example.app000" || apps[0].Status != "Managed" || apps[0].Validated == nil || !*apps[0].Validated {
		t.Fatalf("apps.managed = %+v, want the 10 managed apps in order", apps)
	}
}

// TestPersonalDeviceKeepsOnlyOrganisationApps: a personally owned device
// that answers InstalledApplicationList with every app, whatever
// ManagedAppsOnly asked, has only the organisation's apps stored: those its
// managed-app list says are managed, and those Steward deploys from the
// catalogue unless the device says the copy is the employee's own. The
// dropped ones appear in the log as a number only. A corporate device
// keeps its full list.
func TestPersonalDeviceKeepsOnlyOrganisationApps(t *testing.T) {
	const installed = 8 // com.example.app000 to app007; the device manages app000 and app004
	catalogue := []store.CatalogueApp{
		{Identifier: "com.example.app001", Kind: store.AppApproved, StoreID: 1001},                                 // deployed by Steward
		{Identifier: "com.example.app002", Kind: store.AppApproved},                                                // allowed, not deployable
		{Identifier: "com.example.app003", Kind: store.AppBlocked},                                                 // blocked
		{Identifier: "com.example.app005", Kind: store.AppApproved, ManifestURL: "https://apps.acme.test/5.plist"}, // but installed by the employee
	}
	statuses := map[string]string{"com.example.app005": "UserInstalledApp", "com.example.app006": "Updating"}
	for _, c := range []struct {
		ownership privacy.Ownership
		// afterEnrolment is what the initial inventory keeps, before any
		// managed-app list; afterManagedList, what the next list keeps.
		afterEnrolment, afterManagedList []string
		managed                          bool
	}{
		{privacy.Personal, []string{"com.example.app001", "com.example.app005"},
			[]string{"com.example.app000", "com.example.app001", "com.example.app004", "com.example.app006"}, true},
		{privacy.UserEnrolled, []string{"com.example.app001", "com.example.app005"},
			[]string{"com.example.app000", "com.example.app001", "com.example.app004", "com.example.app006"}, true},
		{privacy.Corporate, everyApp(installed), everyApp(installed), false},
	} {
		t.Run(string(c.ownership), func(t *testing.T) {
			storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
				f := newFixture(t, st)
				var logged bytes.Buffer
				f.log = slog.New(slog.NewTextHandler(&logged, nil))
				f.publish(c.ownership)
				f.addToCatalogue(catalogue...)
				ts := f.serve()
				subject := f.ownerOf(c.ownership)
				d, dev := f.enrolled(ts, c.ownership, subject)
				d.Apps, d.IgnoresManagedAppsOnly, d.AppStatuses = installed, true, statuses
				if _, err := d.Poll(f.ctx); err != nil {
					t.Fatal(err)
				}
				f.checkApps(dev.ID, "after enrolment", c.afterEnrolment, c.managed)

				if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ManagedApplicationList{}, "", admin); err != nil {
					t.Fatal(err)
				}
				if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.InstalledApplicationList{}, "", admin); err != nil {
					t.Fatal(err)
				}
				if _, err := d.Poll(f.ctx); err != nil {
					t.Fatal(err)
				}
				f.checkApps(dev.ID, "after a managed-app list", c.afterManagedList, c.managed)

				warnings := strings.Count(logged.String(), "apps the organisation does not manage")
				switch {
				case c.ownership.PersonallyOwned() && (warnings != 2 || !strings.Contains(logged.String(), "dropped=6") ||
					!strings.Contains(logged.String(), "dropped=4")):
					t.Errorf("want one warning per app list, with the number dropped (6, then 4); logged:\n%s", logged.String())
				case !c.ownership.PersonallyOwned() && warnings != 0:
					t.Errorf("a corporate device's apps were dropped; logged:\n%s", logged.String())
				case strings.Contains(logged.String(), "com.example."):
					t.Errorf("the log names an app:\n%s", logged.String())
				}
			})
		})
	}
}

// addToCatalogue lists apps in the tenant's catalogue.
func (f *fixture) addToCatalogue(apps ...store.CatalogueApp) {
	f.t.Helper()
	err := f.st.Tx(f.ctx, func(q store.Queries) error {
		for _, a := range apps {
			a.ID, a.TenantID, a.Name, a.CreatedAt, a.UpdatedAt = store.NewID(), f.tenant, a.Identifier, f.now, f.now
			if err := q.Apps().Create(f.ctx, a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// checkApps fails the test unless the device's stored app list holds
// exactly want, each marked managed or not.
func (f *fixture) checkApps(deviceID, when string, want []string, managed bool) {
	f.t.Helper()
	var apps []privacy.App
	if err := json.Unmarshal(f.fields(deviceID)["apps.installed"].Value, &apps); err != nil {
		f.t.Fatalf("%s: apps.installed: %v", when, err)
	}
	var got []string
	for _, a := range apps {
		got = append(got, a.ID)
		if a.Managed != managed {
			f.t.Errorf("%s: %s stored with managed %v, want %v", when, a.ID, a.Managed, managed)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		f.t.Errorf("%s: stored apps %v, want %v", when, got, want)
	}
}

// everyApp names the first n apps the simulator installs.
func everyApp(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("com.example.app%03d", i)
	}
	return out
}

// TestListsOnPersonalDevicesAreManagedOnly: profile and certificate lists
// asked of a personally owned device cover only what the organisation
// installed.
func TestListsOnPersonalDevicesAreManagedOnly(t *testing.T) {
	for _, c := range []struct {
		ownership privacy.Ownership
		want      bool
	}{{privacy.Corporate, false}, {privacy.Personal, true}, {privacy.UserEnrolled, true}} {
		d := store.Device{Platform: "ios", Ownership: string(c.ownership)}
		p, err := mdm.RequestFor(mdmproto.ProfileList{}, d, privacy.Settings{}, mdm.DeviceFacts{})
		if err != nil || p.(mdmproto.ProfileList).ManagedOnly != c.want {
			t.Errorf("%s ProfileList: %+v, %v; want ManagedOnly %v", c.ownership, p, err, c.want)
		}
		l, err := mdm.RequestFor(mdmproto.CertificateList{}, d, privacy.Settings{}, mdm.DeviceFacts{})
		if err != nil || l.(mdmproto.CertificateList).ManagedOnly != c.want {
			t.Errorf("%s CertificateList: %+v, %v; want ManagedOnly %v", c.ownership, l, err, c.want)
		}
	}
}

// TestPersonalDeviceReportsWhatItsNoticeSays: under the default policy a
// personal device's MAC addresses are collected and hidden, as its notice
// says; its profile must grant the right a device needs to answer for
// them, and nothing telephony-related is asked or kept.
func TestPersonalDeviceReportsWhatItsNoticeSays(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Personal, f.subject("erika@acme.test"))
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	if len(d.Withheld) > 0 {
		t.Errorf("the device was asked for %v, which its access rights do not cover", d.Withheld)
	}
	fields := f.fields(dev.ID)
	if mac, ok := fields["network.wifi_mac"]; !ok || !mac.Masked {
		t.Errorf("network.wifi_mac = %+v (present %v), want it kept and masked", mac, ok)
	}
	if v, ok := fields["os.supervised"]; !ok || string(v.Value) != "false" {
		t.Errorf("os.supervised = %s, want false for a device enrolled by a downloaded profile", v.Value)
	}
	for field := range fields {
		if strings.HasPrefix(field, "telephony.") {
			t.Errorf("a personal device stored %s", field)
		}
	}
}

// TestDeviceInformationKeepsOnlyWhatWasAsked: a device that answers a
// DeviceInformation command with a key it was not asked, one the policy
// allows (asked OSVersion alone, it answers OSVersion and SerialNumber), has
// only the asked answer stored; the log counts the dropped ones and names
// no value. A command queued before its queries were kept beside the sealed
// payload (none stored) is held to the queries its payload names.
func TestDeviceInformationKeepsOnlyWhatWasAsked(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		var logged bytes.Buffer
		f.log = slog.New(slog.NewTextHandler(&logged, nil))
		f.publish(privacy.Corporate)
		ts := f.serve()
		d, dev := f.enrolled(ts, privacy.Corporate, "")
		if _, err := d.Poll(f.ctx); err != nil { // the initial inventory asks, and stores, the serial number
			t.Fatal(err)
		}
		serial := f.fields(dev.ID)["device.serial_number"]
		if serial.Value == nil {
			t.Fatal("the initial inventory stored no serial number: the policy must allow it for this test")
		}

		// answer sends the device's answer to the command an Idle gets,
		// which must be id.
		answer := func(id, osVersion, tampered string) {
			t.Helper()
			if sent := command(t, d, map[string]any{"Status": "Idle"}); sent.CommandUUID != id {
				t.Fatalf("the device got %+v, want command %s", sent, id)
			}
			if _, err := d.Send(f.ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": id, "RequestType": "DeviceInformation",
				"QueryResponses": map[string]any{"OSVersion": osVersion, "SerialNumber": tampered}}); err != nil {
				t.Fatal(err)
			}
			got := f.fields(dev.ID)
			if v := got["os.version"]; string(v.Value) != `"`+osVersion+`"` {
				t.Errorf("os.version = %s, want %q", v.Value, osVersion)
			}
			if !reflect.DeepEqual(got["device.serial_number"], serial) {
				t.Errorf("the serial number nobody asked for was stored: %s (collected %v), was %s (collected %v)", got["device.serial_number"].Value,
					got["device.serial_number"].CollectedAt, serial.Value, serial.CollectedAt)
			}
			if c, err := f.st.Read().Commands().Get(f.ctx, f.tenant, id); err != nil || c.State != store.CommandAcknowledged {
				t.Errorf("command: %+v, %v; want it acknowledged", c, err)
			}
		}

		cmds, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DeviceInformation{Queries: []string{"OSVersion"}}, "", admin)
		if err != nil {
			t.Fatal(err)
		}
		if stored, err := f.st.Read().Commands().Get(f.ctx, f.tenant, cmds[0].ID); err != nil || !slices.Equal(stored.Queries, []string{"OSVersion"}) {
			t.Fatalf("the command is stored with queries %v, %v; want [OSVersion]", stored.Queries, err)
		}
		answer(cmds[0].ID, "99.1", "TAMPERED-1")

		// As queued before this release: the queries in the sealed payload only.
		legacy := store.Command{ID: strings.ToUpper(store.NewID()), TenantID: f.tenant, DeviceID: dev.ID, RequestType: "DeviceInformation",
			State: store.CommandQueued, RequestedBy: "admin:" + admin.ID, CreatedAt: f.now}
		built, err := mdmproto.Build(legacy.ID, mdmproto.DeviceInformation{Queries: []string{"OSVersion"}})
		if err != nil {
			t.Fatal(err)
		}
		if legacy.Payload, err = f.sealer.Seal(built.Plist(), []byte("mdm-command:"+legacy.ID)); err != nil {
			t.Fatal(err)
		}
		if err := f.st.Tx(f.ctx, func(q store.Queries) error { return q.Commands().Enqueue(f.ctx, []store.Command{legacy}, 10) }); err != nil {
			t.Fatal(err)
		}
		answer(legacy.ID, "99.2", "TAMPERED-2")

		if n := strings.Count(logged.String(), "queries it was not asked"); n != 2 || strings.Count(logged.String(), "dropped=1") != 2 {
			t.Errorf("want one warning per answer, each counting one dropped answer; logged:\n%s", logged.String())
		}
		if strings.Contains(logged.String(), "TAMPERED") || strings.Contains(logged.String(), "SerialNumber") {
			t.Errorf("the log names a dropped answer:\n%s", logged.String())
		}
	})
}

// TestQueriesStayWithinTheEnrolmentsRights: a personal device whose
// enrolment granted no network information right is not asked for its
// MAC addresses, whatever the policy allows since; asked for nothing else,
// the command is refused with why.
func TestQueriesStayWithinTheEnrolmentsRights(t *testing.T) {
	d := store.Device{Platform: "ios", Ownership: string(privacy.Personal), OSVersion: "18.1"}
	settings := privacy.Settings{Policy: privacy.DefaultPolicy()}
	noNetwork := mdm.DeviceFacts{GrantedRights: mdmproto.AccessDeviceInformation | mdmproto.AccessDeviceLock}
	got, err := mdm.RequestFor(mdmproto.DeviceInformation{Queries: []string{"OSVersion", "WiFiMAC", "BluetoothMAC"}}, d, settings, noNetwork)
	if err != nil || !slices.Equal(got.(mdmproto.DeviceInformation).Queries, []string{"OSVersion"}) {
		t.Errorf("without the network right: %+v, %v; want OSVersion alone", got, err)
	}
	_, err = mdm.RequestFor(mdmproto.DeviceInformation{Queries: []string{"WiFiMAC"}}, d, settings, noNetwork)
	if err == nil || !strings.Contains(err.Error(), "enrol again") {
		t.Errorf("only WiFiMAC without the network right: %v, want a refusal saying it must enrol again", err)
	}
	withNetwork := mdm.DeviceFacts{GrantedRights: noNetwork.GrantedRights | mdmproto.AccessNetworkInformation}
	got, err = mdm.RequestFor(mdmproto.DeviceInformation{Queries: []string{"OSVersion", "WiFiMAC"}}, d, settings, withNetwork)
	if err != nil || !slices.Equal(got.(mdmproto.DeviceInformation).Queries, []string{"OSVersion", "WiFiMAC"}) {
		t.Errorf("with the network right: %+v, %v; want both queries", got, err)
	}
}

// TestTelephonyLandsInTheInventory: a corporate iPhone on iOS 18 is asked
// ServiceSubscriptions, none of the deprecated telephony queries, and its
// line fills the telephony fields as the deprecated queries fill them
// on iOS 15; both go through the gate (encrypted, shown as the policy
// says). A personal device under the default policy is asked neither.
func TestTelephonyLandsInTheInventory(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		f.publish(privacy.Personal)
		ts := f.serve()
		want := map[string]string{"telephony.phone_number": "+49 1575 5550100", "telephony.imei": "35 693803 564380 9",
			"telephony.iccid": "8949 0200 0012 3456 7890", "telephony.carrier": "Telekom.de"}
		telephonyAsked := func(deviceID string) []string {
			t.Helper()
			cmds, err := f.st.Read().Commands().List(f.ctx, f.tenant, deviceID, store.Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var asked []string
			for _, c := range cmds {
				for _, q := range c.Queries {
					if q == "ServiceSubscriptions" || q == "IMEI" || q == "MEID" || q == "ICCID" || q == "PhoneNumber" || q == "CurrentCarrierNetwork" {
						asked = append(asked, q)
					}
				}
			}
			slices.Sort(asked)
			return asked
		}
		for _, c := range []struct {
			version string
			asked   []string
		}{
			{"18.1", []string{"ServiceSubscriptions"}},
			{"15.8", []string{"CurrentCarrierNetwork", "ICCID", "IMEI", "MEID", "PhoneNumber"}},
		} {
			d, dev := f.polled(ts, privacy.Corporate, "", func(d *sim.Device) { d.OSVersion = c.version })
			if got := telephonyAsked(dev.ID); !slices.Equal(got, c.asked) {
				t.Errorf("iOS %s was asked %v, want %v", c.version, got, c.asked)
			}
			if len(d.Withheld) > 0 {
				t.Errorf("iOS %s was asked %v, which its enrolment does not let it answer", c.version, d.Withheld)
			}
			fields := f.fields(dev.ID)
			for field, value := range want {
				v, ok := fields[field]
				if !ok || v.Masked || !v.Personal || string(v.Value) != fmt.Sprintf("%q", value) {
					t.Errorf("iOS %s: %s = %+v (present %v), want %q shown, and personal", c.version, field, v, ok, value)
				}
			}
		}
		_, personal := f.polled(ts, privacy.Personal, f.subject("erika@acme.test"))
		if got := telephonyAsked(personal.ID); len(got) > 0 {
			t.Errorf("a personal device under the default policy was asked %v", got)
		}
	})
}

// TestMalformedServiceSubscriptionsKeepsNothing: a DeviceInformation
// answer whose ServiceSubscriptions is not Apple's array of dictionaries
// fails its command as an answer that did not decode, and nothing of it is
// stored, not even its other, well-formed answers.
func TestMalformedServiceSubscriptionsKeepsNothing(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		d, dev := f.polled(ts, privacy.Corporate, "")
		before := f.fields(dev.ID)
		if _, ok := before["os.version"]; !ok {
			t.Fatal("the initial inventory stored no OS version: the policy must allow it for this test")
		}
		for name, subs := range map[string]any{
			"a string":                   "+49 1575 5550100",
			"a phone number as a number": []any{map[string]any{"PhoneNumber": 4915755550100, "IsDataPreferred": true}},
			"more lines than a device has": slices.Repeat([]any{map[string]any{"PhoneNumber": "+49 1520 5550199"}},
				mdmproto.MaxServiceSubscriptions+1),
		} {
			state := f.answer(t, d, dev.ID, mdmproto.DeviceInformation{Queries: []string{"OSVersion", "ServiceSubscriptions"}},
				map[string]any{"QueryResponses": map[string]any{"OSVersion": "99.1", "ServiceSubscriptions": subs}})
			if state != store.CommandError {
				t.Errorf("%s: the command ended %s, want %s", name, state, store.CommandError)
			}
			if after := f.fields(dev.ID); !reflect.DeepEqual(after, before) {
				t.Errorf("%s: the inventory changed:\n%+v\nwas\n%+v", name, after, before)
			}
		}
	})
}
