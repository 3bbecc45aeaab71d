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

// hideApps narrows the tenant's policy: o's installed apps become hidden.
func (f *testFleet) hideApps(o privacy.Ownership) {
	f.t.Helper()
	var res api.PolicyChangeView
	f.must(200, f.owner, "POST", f.path("/privacy/policy-changes"), api.PolicyChangeRequest{Reason: "apps only with a reason",
		Changes: []privacy.Change{{Ownership: o, Category: privacy.InstalledApps, Mode: privacy.Hide}}}, &res)
	if !res.Applied {
		f.t.Fatalf("hiding %s apps: %+v", o, res)
	}
}

// TestSoftwareReportLeavesOutHiddenApps: the software report counts the
// apps of classes whose apps the policy shows, leaves out the devices of a
// class that hides them, and says how many it left out.
func TestSoftwareReportLeavesOutHiddenApps(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		f.must(201, f.owner, "POST", f.path("/privacy/notices"), api.NoticeRequest{Ownership: "shared",
			Translations: []privacy.Translation{{Language: "en", Title: "Devices", Body: "What we manage."}}}, nil)
		f.enrol("corporate", "", "", nil)
		f.enrol("shared", "", "", nil)
		f.hideApps(privacy.Corporate)

		var doc struct {
			Summary []struct{ Label, Value string } `json:"summary"`
			Notes   []string                        `json:"notes"`
			Rows    []struct {
				Cells map[string]string `json:"cells"`
			} `json:"rows"`
		}
		f.must(200, f.owner, "GET", f.path("/reports/software?format=json"), nil, &doc)
		summary := map[string]string{}
		for _, m := range doc.Summary {
			summary[m.Label] = m.Value
		}
		if summary[compliance.LeftOutMetric] != "1" || summary["Devices reporting apps"] != "1" {
			t.Errorf("summary %v: want the corporate device left out and the shared one counted", summary)
		}
		for _, row := range doc.Rows {
			if row.Cells["corporate"] != row.Cells["devices"] || row.Cells["devices"] != "1" {
				t.Errorf("app %s counted on %s devices (%s corporate or shared), want the shared device alone",
					row.Cells["app"], row.Cells["devices"], row.Cells["corporate"])
			}
		}
		if len(doc.Rows) == 0 || !strings.Contains(strings.Join(doc.Notes, " "), "1 devices are left out") {
			t.Errorf("rows %d, notes %q: want the shared device's apps and a note on the one left out", len(doc.Rows), doc.Notes)
		}
	})
}
