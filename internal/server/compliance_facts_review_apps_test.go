package server

import (
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// An app list kept from admins decides no app rule: the outcome would
// tell every admin who reads the device what the mask keeps back. A
// report with its list stored hidden leaves the rule unknown, and so does
// the tenant-wide pass for a standing an earlier version judged on a list
// hidden since.
func TestComplianceFactsHiddenAppsDecideNothing(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, ro := f.admin("ro@fleet.test", "readonly")
		var pol api.PolicyView
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "No app5",
			Rules: compliance.Rules{ForbiddenApps: []string{"com.example.app005"}}}, &pol)
		f.must(201, f.owner, "POST", f.path("/apps"), device.AppInput{Identifier: "com.example.app004", Name: "Game", Kind: "blocked"}, nil)
		_, shownID := f.enrol("corporate", "", "", nil)
		judged, err := f.app.Store.Read().Compliance().Standings(f.ctx, f.tenant, shownID)
		if err != nil || len(judged) != 1 || !strings.Contains(string(judged[0].Violations), "forbidden_app") {
			t.Fatalf("apps shown: %+v %v", judged, err)
		}

		f.hideApps(privacy.Corporate)
		_, hiddenID := f.enrol("corporate", "", "", nil) // its list stored hidden
		var dc api.DeviceComplianceView
		f.must(200, ro, "GET", f.path("/devices/"+hiddenID+"/compliance"), nil, &dc)
		if len(dc.Standings) != 1 || rules(dc.Standings[0]) != "apps?" || dc.Compliance != store.ComplianceUnknown ||
			!strings.Contains(dc.Standings[0].Violations[0].Reason, appsHiddenReason) {
			t.Fatalf("a report with its apps stored hidden: %+v", dc)
		}

		// The standing judged on the list before it was hidden, as a
		// version before this one left it: the pass corrects it.
		err = f.app.Store.Tx(f.ctx, func(q store.Queries) error {
			if err := q.Compliance().PutStanding(f.ctx, judged[0]); err != nil {
				return err
			}
			return q.ManagedDevices().SetCompliance(f.ctx, f.tenant, shownID, judged[0].State, time.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.app.Compliance.EvaluateTenant(f.ctx, f.tenant, nil); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{shownID, hiddenID} {
			if state, s := f.standingsOf(id); rules(s[pol.ID]) != "apps?" || state != store.ComplianceUnknown {
				t.Errorf("%s after the tenant-wide pass: %s %+v", id, state, s)
			}
		}
	})
}

// The device's own evaluation (an inventory report, a profile installed)
// reads its apps as the pass does; apps no longer collected are kept from
// admins too, and the reason says so rather than wait for a report.
func TestComplianceFactsHiddenAppsOneDevice(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var pol api.PolicyView
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "No app5",
			Rules: compliance.Rules{ForbiddenApps: []string{"com.example.app005"}}}, &pol)
		_, id := f.enrol("corporate", "", "", nil)
		evaluate := func() {
			t.Helper()
			err := f.app.Store.Tx(f.ctx, func(q store.Queries) error {
				d, err := q.Devices().Get(f.ctx, f.tenant, id)
				if err != nil {
					return err
				}
				return f.app.Compliance.EvaluateDevice(f.ctx, q, d, nil)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		f.hideApps(privacy.Corporate)
		evaluate()
		if state, s := f.standingsOf(id); rules(s[pol.ID]) != "apps?" || state != store.ComplianceUnknown {
			t.Fatalf("after a narrowing, the device's own evaluation: %s %+v", state, s)
		}
		var res api.PolicyChangeView
		f.must(200, f.owner, "POST", f.path("/privacy/policy-changes"), api.PolicyChangeRequest{Reason: "apps not collected",
			Changes: []privacy.Change{{Ownership: privacy.Corporate, Category: privacy.InstalledApps, Mode: privacy.Drop}}}, &res)
		evaluate()
		if _, s := f.standingsOf(id); rules(s[pol.ID]) != "apps?" || !strings.Contains(s[pol.ID].Violations[0].Reason, appsHiddenReason) {
			t.Fatalf("apps no longer collected: %+v", s)
		}
	})
}
