package server

import (
	"encoding/json"
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

// TestAppGroupLeavesOutHiddenMembers: a group whose rule reads apps keeps
// choosing its members from every device, but its members list, its count
// and the device list filtered by it leave out the devices of a class whose
// apps the policy hides, and say how many.
func TestAppGroupLeavesOutHiddenMembers(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		f.must(201, f.owner, "POST", f.path("/privacy/notices"), api.NoticeRequest{Ownership: "shared",
			Translations: []privacy.Translation{{Language: "en", Title: "Devices", Body: "What we manage."}}}, nil)
		_, corporate := f.enrol("corporate", "", "", nil)
		_, shared := f.enrol("shared", "", "", nil)
		var g api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Has app 0", Kind: "dynamic",
			Rule: json.RawMessage(`{"attr":"apps","op":"contains_any","value":["com.example.app000"]}`)}, &g)
		f.must(200, f.owner, "POST", f.path("/groups/"+g.ID+"/refresh"), nil, nil)
		var members api.GroupMembersView
		f.must(200, f.owner, "GET", f.path("/groups/"+g.ID+"/members"), nil, &members)
		if len(members.Items) != 2 || members.LeftOut != 0 {
			t.Fatalf("precondition: both devices hold the app and the policy shows it: %+v", members)
		}

		f.hideApps(privacy.Corporate)
		if ms, err := f.app.Store.Read().Groups().AllMembers(f.ctx, f.tenant, g.ID); err != nil || len(ms) != 2 {
			t.Errorf("the group's members are %v (%v): the rule still uses the hidden apps", ms, err)
		}
		members = api.GroupMembersView{}
		f.must(200, f.owner, "GET", f.path("/groups/"+g.ID+"/members"), nil, &members)
		if len(members.Items) != 1 || members.Items[0] != shared || members.LeftOut != 1 || members.Note == "" {
			t.Errorf("members list: %+v, want the shared device and one left out, with a note", members)
		}
		f.must(200, f.owner, "GET", f.path("/groups/"+g.ID), nil, &g)
		if g.Members != 1 || g.LeftOut != 1 || g.Note == "" {
			t.Errorf("group: %d members and %d left out (%q), want 1 and 1 with a note", g.Members, g.LeftOut, g.Note)
		}
		var list api.DeviceListView
		f.must(200, f.owner, "GET", f.path("/devices?group="+g.ID), nil, &list)
		if len(list.Items) != 1 || list.Items[0].ID != shared || list.LeftOut != 1 {
			t.Errorf("devices of the group: %+v, want the shared device and one left out", list)
		}
		for _, d := range list.Items {
			if d.ID == corporate {
				t.Errorf("the corporate device is listed in the group")
			}
		}
	})
}
