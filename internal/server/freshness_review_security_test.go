package server

import (
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// managementAt moves every management clock to at.
func (f *testFleet) managementAt(at time.Time) {
	now := func() time.Time { return at }
	f.app.Compliance.SetClock(now)
	f.app.MDM.SetClock(now)
	f.app.Devices.SetClock(now)
	f.app.Actions.SetClock(now)
}

func (f *testFleet) complianceOf(deviceID string) api.DeviceComplianceView {
	f.t.Helper()
	var dc api.DeviceComplianceView
	f.must(200, f.owner, "GET", f.path("/devices/"+deviceID+"/compliance"), nil, &dc)
	return dc
}

// refreshCommands lists the device's commands the periodic refresh queued.
func (f *testFleet) refreshCommands(deviceID string) []api.CommandView {
	f.t.Helper()
	var cmds api.List[api.CommandView]
	f.must(200, f.owner, "GET", f.path("/devices/"+deviceID+"/commands?limit=1000"), nil, &cmds)
	var out []api.CommandView
	for _, c := range cmds.Items {
		if c.Reason == mdm.FactsRefreshReason {
			out = append(out, c)
		}
	}
	return out
}

// TestFreshnessReviewSecurityFactsRefreshed: a day on, the hourly job asks
// enrolled devices for their security and OS facts again, so a Mac whose
// user turned FileVault off becomes noncompliant and an iPhone whose
// employee set a passcode becomes compliant. The next run asks nothing
// more of devices asked within the day, and a device that stays silent is
// not asked again while its question waits.
func TestFreshnessReviewSecurityFactsRefreshed(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		marks := compliance.Ladder{{Action: compliance.StepMarkNoncompliant}}
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Protected",
			Rules: compliance.Rules{EncryptionRequired: true, PasscodeRequired: true}, Ladder: &marks}, nil)
		laptop, lid := f.enrol("corporate", "", "", mac)
		phone, pid := f.enrol("corporate", "", "", func(d *sim.Device) { d.NoPasscode = true })
		silent, sid := f.enrol("corporate", "", "", nil)
		if c := f.complianceOf(lid).Compliance; c != store.ComplianceCompliant {
			t.Fatalf("the Mac with FileVault on: %s", c)
		}
		if c := f.complianceOf(pid).Compliance; c != store.ComplianceNoncompliant {
			t.Fatalf("the iPhone without a passcode: %s", c)
		}
		f.app.hourlyManagement(f.ctx, "test")
		if n := f.poll(laptop) + f.poll(phone); n != 0 {
			t.Fatalf("devices that answered within the day were asked %d questions", n)
		}

		laptop.FileVaultOff = true
		phone.NoPasscode = false
		start := time.Now()
		f.managementAt(start.Add(25 * time.Hour))
		f.app.hourlyManagement(f.ctx, "test")
		for _, d := range []*sim.Device{laptop, phone} {
			if n := f.poll(d); n != 2 {
				t.Errorf("a device a day on answered %d questions, want SecurityInfo and DeviceInformation", n)
			}
		}
		if c := f.complianceOf(lid).Compliance; c != store.ComplianceNoncompliant {
			t.Errorf("the Mac now without FileVault: %s, want noncompliant", c)
		}
		if c := f.complianceOf(pid).Compliance; c != store.ComplianceCompliant {
			t.Errorf("the iPhone now with a passcode: %s, want compliant", c)
		}

		f.managementAt(start.Add(26 * time.Hour))
		f.app.hourlyManagement(f.ctx, "test")
		if n := f.poll(laptop) + f.poll(phone); n != 0 {
			t.Errorf("devices asked an hour ago were asked %d questions again", n)
		}
		f.managementAt(start.Add(60 * time.Hour)) // silent for more than a day, its question waiting
		f.app.hourlyManagement(f.ctx, "test")
		if got := f.refreshCommands(sid); len(got) != 2 {
			t.Errorf("the silent device holds %d refresh commands, want its first two only: %+v", len(got), got)
		}
		if n := f.poll(silent); n != 2 {
			t.Errorf("the silent device, back, answered %d questions; want 2", n)
		}
	})
}

// TestFreshnessReviewFixedButNotLocked: under the default ladder (lock
// after a week), an iPhone whose employee set the passcode right after the
// notice is found compliant at the next refresh and never locked.
func TestFreshnessReviewFixedButNotLocked(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Passcode",
			Rules: compliance.Rules{PasscodeRequired: true}}, nil)
		phone, pid := f.enrol("corporate", "", "", func(d *sim.Device) { d.NoPasscode = true })
		phone.NoPasscode = false
		start := time.Now()
		for day := 1; day <= 8; day++ {
			f.managementAt(start.Add(time.Duration(day) * 24 * time.Hour))
			f.app.hourlyManagement(f.ctx, "test")
			f.poll(phone)
			if _, err := f.app.Compliance.RunDueSteps(f.ctx, 100); err != nil {
				t.Fatal(err)
			}
		}
		if c := f.complianceOf(pid).Compliance; c != store.ComplianceCompliant {
			t.Errorf("the iPhone with its passcode set: %s, want compliant", c)
		}
		var cmds api.List[api.CommandView]
		f.must(200, f.owner, "GET", f.path("/devices/"+pid+"/commands?limit=1000"), nil, &cmds)
		for _, c := range cmds.Items {
			if c.RequestType == "DeviceLock" {
				t.Errorf("the fixed iPhone was locked: %+v", c)
			}
		}
	})
}

// TestFreshnessReviewRetentionKeepsFactsFresh: with security state kept
// for one day, devices are asked again after half of it, before their
// answers expire and leave them unknown.
func TestFreshnessReviewRetentionKeepsFactsFresh(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		f.must(200, f.owner, "PUT", f.path("/privacy/retention"), api.RetentionRequest{
			RetentionDays: map[privacy.Category]int{privacy.SecurityState: 1}, Reason: "only the current state matters"}, nil)
		phone, _ := f.enrol("corporate", "", "", nil)
		start := time.Now()
		f.managementAt(start.Add(11 * time.Hour))
		f.app.hourlyManagement(f.ctx, "test")
		if n := f.poll(phone); n != 0 {
			t.Fatalf("eleven hours on, the device was asked %d questions", n)
		}
		f.managementAt(start.Add(13 * time.Hour))
		f.app.hourlyManagement(f.ctx, "test")
		if n := f.poll(phone); n != 2 {
			t.Errorf("past half its security state's retention, the device answered %d questions; want 2", n)
		}
	})
}
