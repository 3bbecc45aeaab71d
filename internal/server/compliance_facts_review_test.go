package server

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// standingsOf returns a device's standings, by policy ID.
func (f *testFleet) standingsOf(deviceID string) (string, map[string]api.StandingView) {
	f.t.Helper()
	var dc api.DeviceComplianceView
	f.must(200, f.owner, "GET", f.path("/devices/"+deviceID+"/compliance"), nil, &dc)
	out := map[string]api.StandingView{}
	for _, s := range dc.Standings {
		out[s.PolicyID] = s
	}
	return dc.Compliance, out
}

// rules lists a standing's violations as rule names, unknown ones marked "?".
func rules(s api.StandingView) string {
	var out []string
	for _, v := range s.Violations {
		if v.Unknown {
			out = append(out, v.Rule+"?")
		} else {
			out = append(out, v.Rule)
		}
	}
	return strings.Join(out, ",")
}

const appsHiddenReason = "privacy settings keep this device's apps"

// A rule the device has not reported on refuses it even while another
// rule, failing in grace, makes its overall state in_grace: across two
// policies, and inside one.
func TestComplianceFactsUnknownRefusesInGrace(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		f.hideApps(privacy.Corporate) // the app rule stays unknown
		marks := compliance.Ladder{{Action: compliance.StepMarkNoncompliant}}
		grace := compliance.Ladder{{Action: compliance.StepNotify}, {Action: compliance.StepMarkNoncompliant, AfterHours: 24 * 30}}
		var apps, osPol api.PolicyView
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "No app5",
			Rules: compliance.Rules{ForbiddenApps: []string{"com.example.app005"}}, Ladder: &marks}, &apps)
		phone, id := f.enrol("corporate", "", "", nil)
		if a, err := f.app.Compliance.CheckAccess(f.ctx, f.tenant, phone.Certificate(), ""); err != nil || a.Allowed {
			t.Fatalf("unknown only: %+v %v", a, err)
		}
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "OS", Platform: "ios",
			Rules: compliance.Rules{MinOSVersion: "99.0"}, Ladder: &grace}, &osPol)
		state, standings := f.standingsOf(id)
		if state != compliance.InGrace || standings[apps.ID].State != store.ComplianceUnknown {
			t.Fatalf("across policies: %s %+v", state, standings)
		}
		a, err := f.app.Compliance.CheckAccess(f.ctx, f.tenant, phone.Certificate(), "")
		if err != nil || a.Allowed || len(a.Reasons) != 2 || !strings.Contains(a.Reasons[0], appsHiddenReason) {
			t.Fatalf("unknown and in grace across policies: %+v %v", a, err)
		}

		// One policy failing one rule in grace and not knowing another.
		f.must(204, f.owner, "DELETE", f.path("/compliance/policies/"+apps.ID), nil, nil)
		f.must(200, f.owner, "PUT", f.path("/compliance/policies/"+osPol.ID), compliance.PolicyInput{Name: "OS", Platform: "ios",
			Rules: compliance.Rules{MinOSVersion: "99.0", ForbiddenApps: []string{"com.example.app005"}}, Ladder: &grace}, nil)
		state, standings = f.standingsOf(id)
		if state != compliance.InGrace || rules(standings[osPol.ID]) != "min_os_version,apps?" {
			t.Fatalf("inside one policy: %s %+v", state, standings)
		}
		a, err = f.app.Compliance.CheckAccess(f.ctx, f.tenant, phone.Certificate(), "")
		if err != nil || a.Allowed || len(a.Reasons) != 2 || !strings.Contains(a.Reasons[0], appsHiddenReason) {
			t.Fatalf("unknown and in grace inside one policy: %+v %v", a, err)
		}

		// Known again: in grace is allowed, its reason said.
		f.must(200, f.owner, "PUT", f.path("/compliance/policies/"+osPol.ID), compliance.PolicyInput{Name: "OS", Platform: "ios",
			Rules: compliance.Rules{MinOSVersion: "99.0"}, Ladder: &grace}, nil)
		a, err = f.app.Compliance.CheckAccess(f.ctx, f.tenant, phone.Certificate(), "")
		if err != nil || !a.Allowed || len(a.Reasons) != 1 || !strings.Contains(a.Reasons[0], "99.0") {
			t.Fatalf("in grace only: %+v %v", a, err)
		}
	})
}
