package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// seedUncoveredMacs stores a full evaluation page (500) of enrolled Macs
// with IDs that sort before every real device's, so that a tenant-wide
// pass reaches the test's phone only in its second page.
func seedUncoveredMacs(t *testing.T, f *testFleet, st store.Store) {
	t.Helper()
	err := st.Tx(f.ctx, func(q store.Queries) error {
		for i := range 500 {
			id := fmt.Sprintf("00000000-0000-7000-8000-%012d", i)
			if err := q.Devices().Create(f.ctx, store.Device{ID: id, TenantID: f.tenant, Ownership: "corporate", Platform: "macos",
				State: store.DeviceEnrolled, KeyID: "k-" + id, Compliance: store.ComplianceUnknown}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// betweenFirstPages runs between calls with EvaluateTenant's progress
// after its first page, before its second.
func betweenFirstPages(run func()) func(int) {
	pages := 0
	return func(int) {
		if pages++; pages == 1 {
			run()
		}
	}
}

func lockCount(t *testing.T, st store.Store, f *testFleet, deviceID string) int {
	t.Helper()
	acts, err := st.Read().Actions().ForDevice(f.ctx, f.tenant, deviceID, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range acts {
		if a.Action == string(actions.Lock) {
			n++
		}
	}
	return n
}

// A device that starts failing while a tenant-wide pass is between pages
// keeps the summary its report gave it: the pass reads the page's facts
// and standings when it reaches the page, not at its start.
func TestCompliancePassReadsEachPageFresh(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		ladder := compliance.Ladder{{Action: compliance.StepMarkNoncompliant}}
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Passcode", Platform: "ios",
			Rules: compliance.Rules{PasscodeRequired: true}, Ladder: &ladder}, nil)
		seedUncoveredMacs(t, f, st)
		phone, phoneID := f.enrol("corporate", "", "", func(d *sim.Device) { d.OSVersion = "18.2" })
		if d := f.device(f.owner, phoneID); d.Compliance != store.ComplianceCompliant {
			t.Fatalf("the phone with a passcode is %q", d.Compliance)
		}
		_, err := f.app.Compliance.EvaluateTenant(f.ctx, f.tenant, betweenFirstPages(func() {
			phone.NoPasscode = true
			f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/actions"),
				api.DeviceActionRequest{Action: actions.Sync, Reason: "checking the passcode state"}, nil)
			f.poll(phone)
			if d := f.device(f.owner, phoneID); d.Compliance != store.ComplianceNoncompliant {
				t.Fatalf("after reporting no passcode the phone is %q", d.Compliance)
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		if d := f.device(f.owner, phoneID); d.Compliance != store.ComplianceNoncompliant {
			t.Errorf("after the pass the passcode-less phone is %q", d.Compliance)
		}
		check := "/api/v1/access/" + f.tenant + "/check"
		if r := f.do("", "GET", check, nil, "X-SSL-Client-Cert", sim.EscapedPEM(phone.Certificate())); r.status != 403 {
			t.Errorf("conditional access let the passcode-less phone in: %d %s", r.status, r.body)
		}
	})
}

// Ladder steps carried out while a pass is between pages stay taken: the
// pass does not write back the standing it would have read before them,
// so the next run does not lock the device again.
func TestCompliancePassKeepsStepsTakenMeanwhile(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		phone, phoneID := f.enrol("corporate", "", "", func(d *sim.Device) { d.OSVersion = "18.2"; d.NoPasscode = true })
		seedUncoveredMacs(t, f, st)
		ladder := compliance.Ladder{{Action: compliance.StepNotify}, {Action: compliance.StepMarkNoncompliant, AfterHours: 1},
			{Action: compliance.StepLock, AfterHours: 1}}
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Passcode", Platform: "ios",
			Rules: compliance.Rules{PasscodeRequired: true}, Ladder: &ladder}, nil)
		if n, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil || n != 1 {
			t.Fatalf("the notify step: %d ran, %v", n, err)
		}
		later := time.Now().Add(2 * time.Hour)
		f.app.Compliance.SetClock(func() time.Time { return later })
		_, err := f.app.Compliance.EvaluateTenant(f.ctx, f.tenant, betweenFirstPages(func() {
			if n, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil || n != 1 {
				t.Fatalf("the mark step: %d ran, %v", n, err)
			}
			if n, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil || n != 1 {
				t.Fatalf("the lock step: %d ran, %v", n, err)
			}
			f.poll(phone)
		}))
		if err != nil {
			t.Fatal(err)
		}
		standings, err := st.Read().Compliance().Standings(f.ctx, f.tenant, phoneID)
		if err != nil || len(standings) != 1 {
			t.Fatalf("standings %+v, %v", standings, err)
		}
		if s := standings[0]; s.Steps != 3 || s.State != store.ComplianceNoncompliant || !s.NextStepAt.IsZero() {
			t.Errorf("after the pass: %d steps taken, %s, next step at %v; want all 3, noncompliant, none due", s.Steps, s.State, s.NextStepAt)
		}
		if n, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil || n != 0 {
			t.Errorf("steps ran again after the pass: %d, %v", n, err)
		}
		if n := lockCount(t, st, f, phoneID); n != 1 {
			t.Errorf("the ladder's one lock step locked the phone %d times", n)
		}
	})
}
