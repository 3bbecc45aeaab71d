package mdm_test

import (
	"maps"
	"net/http/httptest"
	"strings"
	"testing"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// polled enrols a device and lets it answer its initial inventory, so that
// Steward knows whether it is supervised.
func (f *fixture) polled(ts *httptest.Server, o privacy.Ownership, subjectID string, adjust ...func(*sim.Device)) (*sim.Device, store.Device) {
	f.t.Helper()
	d, dev := f.enrolledWith(ts, o, subjectID, func(d *sim.Device) {
		for _, a := range adjust {
			a(d)
		}
	})
	if _, err := d.Poll(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return d, dev
}

// commandsOf lists a device's commands by request type, with their states.
func (f *fixture) commandsOf(deviceID string) map[string]string {
	f.t.Helper()
	cmds, err := f.st.Read().Commands().List(f.ctx, f.tenant, deviceID, store.Page{Limit: 100})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range cmds {
		out[c.RequestType] = c.State
	}
	return out
}

// sent is the command as the device receives it.
func (f *fixture) sent(c store.Command) map[string]any {
	f.t.Helper()
	raw, err := f.sealer.Open(c.Payload, []byte("mdm-command:"+c.ID))
	if err != nil {
		f.t.Fatal(err)
	}
	var built struct{ Command map[string]any }
	if _, err := plist.Unmarshal(raw, &built); err != nil {
		f.t.Fatal(err)
	}
	return built.Command
}

// TestUserEnrolledMacListsManagedApps: macOS refuses InstalledApplicationList
// on User Enrollment, so a user-enrolled Mac is asked for its managed apps
// instead, at enrolment and whenever its apps are asked for; iPhones keep
// the installed list (managed apps only when personally owned).
func TestUserEnrolledMacListsManagedApps(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	f.publish(privacy.Corporate)
	ts := f.serve()
	_, ueMac := f.polled(ts, privacy.UserEnrolled, f.subject("erika@acme.test"), mac)
	_, uePhone := f.polled(ts, privacy.UserEnrolled, f.subject("jonas@acme.test"))
	_, corpMac := f.polled(ts, privacy.Corporate, "", mac)

	for _, c := range []struct {
		dev        store.Device
		want, none mdmproto.RequestType
	}{
		{ueMac, mdmproto.RequestManagedApplicationList, mdmproto.RequestInstalledApplicationList},
		{uePhone, mdmproto.RequestInstalledApplicationList, mdmproto.RequestManagedApplicationList},
		{corpMac, mdmproto.RequestInstalledApplicationList, mdmproto.RequestManagedApplicationList},
	} {
		got := f.commandsOf(c.dev.ID)
		if got[string(c.want)] != store.CommandAcknowledged || got[string(c.none)] != "" {
			t.Errorf("%s %s at enrolment: %v; want %s answered and no %s", c.dev.Ownership, c.dev.Platform, got, c.want, c.none)
		}
		for rt, state := range got {
			if state != store.CommandAcknowledged {
				t.Errorf("%s %s: %s ended %s", c.dev.Ownership, c.dev.Platform, rt, state)
			}
		}
	}
	cmds, err := f.svc.Enqueue(f.ctx, f.tenant, []string{ueMac.ID}, mdmproto.InstalledApplicationList{Identifiers: []string{"com.example.expenses"}}, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	if sent := f.sent(cmds[0]); sent["RequestType"] != "ManagedApplicationList" || len(sent["Identifiers"].([]any)) != 1 {
		t.Errorf("an app list for a user-enrolled Mac was sent as %v", sent)
	}
}

// TestBulkSkipsCommandsAppleRefuses: a command the device's system,
// enrolment type or supervision makes it refuse (Apple's schema) is not
// queued: a bulk request lists the device with why, one device alone fails
// with it. Keys a system does not use are left out of its command. Every
// command queued is one the simulated devices, which follow the schema on
// their own, carry out.
func TestBulkSkipsCommandsAppleRefuses(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		f.publish(privacy.UserEnrolled)
		ts := f.serve()
		supervisedPhoneSim, supervisedPhone := f.polled(ts, privacy.Corporate, "", supervised)
		phoneSim, phone := f.polled(ts, privacy.Corporate, "")
		corpMacSim, corpMac := f.polled(ts, privacy.Corporate, "", mac)
		ueMacSim, ueMac := f.polled(ts, privacy.UserEnrolled, f.subject("erika@acme.test"), mac)
		supervisedMacSim, supervisedMac := f.polled(ts, privacy.Corporate, "", mac, supervised)
		all := []string{supervisedPhone.ID, phone.ID, corpMac.ID, ueMac.ID}

		bulk := func(req mdmproto.Request, ids []string, want map[string]string) map[string]store.Command {
			t.Helper()
			cmds, skipped, err := f.svc.EnqueueBulk(f.ctx, f.tenant, ids, req, "a reason", admin)
			if err != nil {
				t.Fatalf("%s: %v", req.RequestType(), err)
			}
			got := map[string]string{}
			for _, s := range skipped {
				got[s.DeviceID] = s.Reason
			}
			if !maps.Equal(got, want) {
				t.Errorf("%s skipped %v, want %v", req.RequestType(), got, want)
			}
			queued := map[string]store.Command{}
			for _, c := range cmds {
				queued[c.DeviceID] = c
			}
			return queued
		}
		restart := bulk(mdmproto.RestartDevice{NotifyUser: true}, all,
			map[string]string{phone.ID: mdm.SkipUnsupervised, ueMac.ID: mdm.SkipUnsupported})
		if _, ok := f.sent(restart[supervisedPhone.ID])["NotifyUser"]; ok {
			t.Error("an iPhone was sent RestartDevice with NotifyUser, a macOS key")
		}
		if f.sent(restart[corpMac.ID])["NotifyUser"] != true {
			t.Error("a Mac was sent RestartDevice without NotifyUser")
		}
		bulk(mdmproto.ShutDownDevice{}, all, map[string]string{phone.ID: mdm.SkipUnsupervised, ueMac.ID: mdm.SkipUnsupported})
		lock := bulk(mdmproto.DeviceLock{Message: "Call IT", PIN: "123456"}, all, map[string]string{ueMac.ID: mdm.SkipUnsupported})
		if _, ok := f.sent(lock[phone.ID])["PIN"]; ok {
			t.Error("an iPhone was sent DeviceLock with a PIN, a macOS key")
		}
		if f.sent(lock[corpMac.ID])["PIN"] != "123456" {
			t.Error("a Mac was sent DeviceLock without its PIN")
		}
		bulk(mdmproto.EnableLostMode{Message: "Call IT"}, all[:3], map[string]string{phone.ID: mdm.SkipUnsupervised, corpMac.ID: mdm.SkipUnsupported})
		bulk(mdmproto.RemoveApplication{Identifier: "com.example.expenses"}, all, map[string]string{ueMac.ID: mdm.SkipUnsupported})
		install := bulk(mdmproto.InstallApplication{ITunesStoreID: 361309726, ManagementFlags: mdmproto.ManagementFlagRemoveWithMDM},
			[]string{corpMac.ID, ueMac.ID}, map[string]string{ueMac.ID: mdm.SkipOwnership}) // it would install unmanaged, and stay
		if f.sent(install[corpMac.ID])["ManagementFlags"] != uint64(1) {
			t.Errorf("a corporate Mac was sent InstallApplication without ManagementFlags: %v", f.sent(install[corpMac.ID]))
		}
		later := mdmproto.ScheduleOSUpdate{Updates: []mdmproto.OSUpdate{{ProductVersion: "15.2", InstallAction: "InstallLater"}}}
		bulk(later, []string{supervisedPhone.ID, phone.ID, corpMac.ID, supervisedMac.ID},
			map[string]string{supervisedPhone.ID: mdm.SkipUnsupported, phone.ID: mdm.SkipUnsupervised, corpMac.ID: mdm.SkipUnsupervised})

		// One device alone: its error says what it is and why.
		for _, c := range []struct {
			dev  store.Device
			req  mdmproto.Request
			kind apperr.Kind
			says string
		}{
			{ueMac, mdmproto.DeviceLock{}, apperr.KindConflict, "a Mac enrolled by User Enrollment"},
			{corpMac, mdmproto.DeviceLocation{}, apperr.KindConflict, "not supported on macOS"},
			{corpMac, mdmproto.ClearPasscode{}, apperr.KindConflict, "not supported on macOS"},
			{phone, mdmproto.RestartDevice{}, apperr.KindForbidden, "needs a supervised device"},
			{supervisedPhone, later, apperr.KindConflict, "InstallLater is for Macs only"},
		} {
			_, err := f.svc.Enqueue(f.ctx, f.tenant, []string{c.dev.ID}, c.req, "", admin)
			if !apperr.IsKind(err, c.kind) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("%s to %s %s: %v; want %v saying %q", c.req.RequestType(), c.dev.Ownership, c.dev.Platform, err, c.kind, c.says)
			}
		}

		// The devices carry out every command Steward queued.
		for _, d := range []*sim.Device{supervisedPhoneSim, phoneSim, corpMacSim, ueMacSim, supervisedMacSim} {
			if _, err := d.Poll(f.ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range append(all, supervisedMac.ID) {
			for rt, state := range f.commandsOf(id) {
				if state != store.CommandAcknowledged {
					t.Errorf("device %s: %s ended %s", id, rt, state)
				}
			}
		}
	})
}

// TestSimulatorRefusesLikeADevice: a simulated device answers a command its
// supervision does not allow with an Error and an error chain, as a real
// one does, rather than acknowledging it. (Steward keeps the device's
// description of an error only where the policy shows it.)
func TestSimulatorRefusesLikeADevice(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.polled(ts, privacy.Corporate, "", supervised)
	d.Supervised = false // Steward still holds its last report
	cmds, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.RestartDevice{}, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	got, err := f.st.Read().Commands().Get(f.ctx, f.tenant, cmds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.CommandError || mdm.ErrorSummary(got.ErrorChain) != "MCMDMErrorDomain error 12021" {
		t.Errorf("RestartDevice on an unsupervised iPhone: %s (%s), want the device's error", got.State, mdm.ErrorSummary(got.ErrorChain))
	}
}
