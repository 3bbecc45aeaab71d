package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// not_compromised reads System Integrity Protection, which only a Mac
// reports: on an iPhone it does not apply, rather than refuse it for good.
func TestComplianceFactsIntegrityOnIPhone(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		marks := compliance.Ladder{{Action: compliance.StepMarkNoncompliant}}
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Integrity",
			Rules: compliance.Rules{NotCompromised: true}, Ladder: &marks}, nil)
		phone, phoneID := f.enrol("corporate", "", "", nil)
		laptop, laptopID := f.enrol("corporate", "", "", mac)
		for _, c := range []struct {
			name string
			d    *sim.Device
			id   string
		}{{"iPhone", phone, phoneID}, {"Mac with SIP on", laptop, laptopID}} {
			state, s := f.standingsOf(c.id)
			a, err := f.app.Compliance.CheckAccess(f.ctx, f.tenant, c.d.Certificate(), "")
			if err != nil || state != store.ComplianceCompliant || !a.Allowed {
				t.Errorf("%s: %s %+v access %+v %v", c.name, state, s, a, err)
			}
		}
	})
}

// A device no policy covers meets every policy that covers it: compliant
// while the tenant has a policy, so conditional access allows it; with no
// policy left it is unknown, and refused with a reason that says why.
func TestComplianceFactsUncoveredDevice(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		marks := compliance.Ladder{{Action: compliance.StepMarkNoncompliant}}
		var iphones api.PolicyView
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "iPhones", Platform: "ios",
			Rules: compliance.Rules{PasscodeRequired: true}, Ladder: &marks}, &iphones)
		laptop, laptopID := f.enrol("corporate", "", "", mac)
		phone, phoneID := f.enrol("corporate", "", "", func(d *sim.Device) { d.NoPasscode = true })
		access := func(d *sim.Device) compliance.AccessDecision {
			t.Helper()
			a, err := f.app.Compliance.CheckAccess(f.ctx, f.tenant, d.Certificate(), "")
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		if state, s := f.standingsOf(laptopID); state != store.ComplianceCompliant || len(s) != 0 || !access(laptop).Allowed {
			t.Fatalf("a Mac under an iPhone policy: %s %+v %+v", state, s, access(laptop))
		}
		if state, _ := f.standingsOf(phoneID); state != store.ComplianceNoncompliant || access(phone).Allowed {
			t.Fatalf("an iPhone without a passcode: %s", state)
		}

		// The iPhone policy now covers Macs only: the iPhone's standing
		// goes, and it is compliant.
		f.must(200, f.owner, "PUT", f.path("/compliance/policies/"+iphones.ID), compliance.PolicyInput{Name: "iPhones", Platform: "macos",
			Rules: compliance.Rules{CheckedInWithinDays: 30}, Ladder: &marks}, nil)
		if state, s := f.standingsOf(phoneID); state != store.ComplianceCompliant || len(s) != 0 || !access(phone).Allowed {
			t.Fatalf("an iPhone no policy covers any more: %s %+v %+v", state, s, access(phone))
		}

		f.must(204, f.owner, "DELETE", f.path("/compliance/policies/"+iphones.ID), nil, nil)
		for _, d := range []*sim.Device{phone, laptop} {
			a := access(d)
			if a.Allowed || a.State != store.ComplianceUnknown || len(a.Reasons) != 1 || !strings.Contains(a.Reasons[0], "no compliance requirements") {
				t.Errorf("no policy at all: %+v", a)
			}
		}
	})
}

// min_os_version needs a platform: macOS numbers its versions apart from
// iOS. A policy stored before keeps loading and evaluating.
func TestComplianceFactsMinOSNeedsPlatform(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		old := compliance.PolicyInput{Name: "Current OS", Rules: compliance.Rules{MinOSVersion: "99.0"}}
		r := f.do(f.owner, "POST", f.path("/compliance/policies"), old)
		if r.status != 400 || !strings.Contains(string(r.body), "min_os_version needs the policy's platform") {
			t.Fatalf("without a platform: %d %s", r.status, r.body)
		}
		_, id := f.enrol("corporate", "", "", nil)

		// One stored before the rule: it loads, evaluates as it did, and
		// saving it again asks for a platform.
		now := time.Now().UTC()
		rulesDoc, _ := json.Marshal(old.Rules)
		ladder, _ := json.Marshal(compliance.DefaultLadder())
		legacy := store.CompliancePolicy{ID: store.NewID(), TenantID: f.tenant, Name: old.Name, Rules: rulesDoc, Ladder: ladder,
			Enabled: true, CreatedBy: "test", UpdatedBy: "test", CreatedAt: now, UpdatedAt: now}
		if err := f.app.Store.Tx(f.ctx, func(q store.Queries) error { return q.Compliance().CreatePolicy(f.ctx, legacy) }); err != nil {
			t.Fatal(err)
		}
		if _, err := f.app.Compliance.EvaluateTenant(f.ctx, f.tenant, nil); err != nil {
			t.Fatal(err)
		}
		if _, s := f.standingsOf(id); rules(s[legacy.ID]) != "min_os_version" {
			t.Fatalf("the stored policy: %+v", s)
		}
		if r := f.do(f.owner, "PUT", f.path("/compliance/policies/"+legacy.ID), old); r.status != 400 {
			t.Fatalf("saving it again without a platform: %d %s", r.status, r.body)
		}
		old.Platform = "ios"
		f.must(200, f.owner, "PUT", f.path("/compliance/policies/"+legacy.ID), old, nil)
	})
}
