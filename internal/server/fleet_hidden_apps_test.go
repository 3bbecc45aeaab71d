package server

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
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

// personalAppsAwaitingConsent: personal devices' apps are hidden and the
// personal notice says so; a personal device enrolled under it reports its
// apps; then two admins widen personal apps to show, which publishes a new
// notice its owner has not accepted. The returned accept records the
// owner's acceptance of that notice and has the device report again.
func (f *testFleet) personalAppsAwaitingConsent() (phoneID string, accept func()) {
	f.t.Helper()
	f.hideApps(privacy.Personal)
	f.must(201, f.owner, "POST", f.path("/privacy/notices"), api.NoticeRequest{Ownership: "personal",
		Translations: []privacy.Translation{{Language: "en", Title: "Devices", Body: "Your apps stay hidden."}}}, nil)
	erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
	if err != nil {
		f.t.Fatal(err)
	}
	// An app Steward deploys: a personal device's list keeps only such.
	f.must(201, f.owner, "POST", f.path("/apps"), device.AppInput{Identifier: "com.example.app000", Name: "App 0", Kind: "approved",
		StoreID: 123456}, nil)
	phone, phoneID := f.enrol("personal", erika.ID, "", nil)

	_, second := f.admin("second@fleet.test", "administrator")
	var pc api.PolicyChangeView
	f.must(200, f.owner, "POST", f.path("/privacy/policy-changes"), api.PolicyChangeRequest{Reason: "the works council agreed",
		Changes: []privacy.Change{{Ownership: privacy.Personal, Category: privacy.InstalledApps, Mode: privacy.Show}}}, &pc)
	if pc.Approval == nil {
		f.t.Fatalf("widening personal apps applied without a second admin: %+v", pc)
	}
	f.must(200, second, "POST", f.path("/approvals/"+pc.Approval.ID+"/decision"), api.DecisionRequest{Approve: true}, &pc)
	if !pc.Applied || pc.Policy.Mode(privacy.Personal, privacy.InstalledApps) != privacy.Show {
		f.t.Fatalf("the second admin's approval did not widen personal apps: %+v", pc)
	}
	sync := func() {
		f.t.Helper()
		f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/actions"), api.DeviceActionRequest{Action: actions.Sync,
			Reason: "refresh the inventory"}, nil)
		f.poll(phone)
	}
	sync() // reported again under the notice its owner accepted: still hidden
	return phoneID, func() {
		f.t.Helper()
		settings, err := privacy.ViewSettings(f.ctx, f.app.Store.Read(), f.tenant)
		if err != nil {
			f.t.Fatal(err)
		}
		if _, err := f.app.Privacy.RecordConsent(f.ctx, f.tenant, erika.ID, privacy.ConsentInput{Ownership: "personal",
			NoticeVersion: settings.NoticeVersions[privacy.Personal], Language: "en", Method: "portal"},
			iam.Actor{Type: store.ActorSubject, ID: erika.ID}); err != nil {
			f.t.Fatal(err)
		}
		sync()
	}
}

type softwareDoc struct {
	Summary []struct{ Label, Value string } `json:"summary"`
	Notes   []string                        `json:"notes"`
	Rows    []struct {
		Cells map[string]string `json:"cells"`
	} `json:"rows"`
}

func (f *testFleet) softwareReport() (doc softwareDoc, summary map[string]string, byApp map[string]map[string]string) {
	f.t.Helper()
	f.must(200, f.owner, "GET", f.path("/reports/software?format=json"), nil, &doc)
	summary, byApp = map[string]string{}, map[string]map[string]string{}
	for _, m := range doc.Summary {
		summary[m.Label] = m.Value
	}
	for _, row := range doc.Rows {
		byApp[row.Cells["app"]] = row.Cells
	}
	return doc, summary, byApp
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

		doc, summary, _ := f.softwareReport()
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

		// A personal device follows the policy that applies to it: the
		// widening waits for its owner's acceptance.
		_, accept := f.personalAppsAwaitingConsent()
		doc, summary, byApp := f.softwareReport()
		if summary[compliance.LeftOutMetric] != "2" || summary["Devices reporting apps"] != "1" || byApp["com.example.app000"]["personal"] != "0" {
			t.Errorf("before its owner accepted the widening: summary %v, app000 %v: want the personal device left out",
				summary, byApp["com.example.app000"])
		}
		if !strings.Contains(strings.Join(doc.Notes, " "), "2 devices are left out") {
			t.Errorf("notes %q: want the two devices left out", doc.Notes)
		}
		accept()
		_, summary, byApp = f.softwareReport()
		if summary[compliance.LeftOutMetric] != "1" || summary["Devices reporting apps"] != "2" || byApp["com.example.app000"]["personal"] != "1" {
			t.Errorf("after its owner accepted the widening and it reported again: summary %v, app000 %v: want the personal device counted",
				summary, byApp["com.example.app000"])
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

		// A personal device follows the policy that applies to it: the
		// widening waits for its owner's acceptance.
		phone, accept := f.personalAppsAwaitingConsent()
		f.must(200, f.owner, "POST", f.path("/groups/"+g.ID+"/refresh"), nil, nil)
		if ms, err := f.app.Store.Read().Groups().AllMembers(f.ctx, f.tenant, g.ID); err != nil || !slices.Contains(ms, phone) {
			t.Fatalf("the group's members are %v (%v): the rule chooses the personal device from its hidden apps", ms, err)
		}
		check := func(when string, wantPhone bool) {
			t.Helper()
			want, leftOut := []string{shared}, 2
			if wantPhone {
				want, leftOut = append(want, phone), 1
			}
			slices.Sort(want)
			members = api.GroupMembersView{}
			f.must(200, f.owner, "GET", f.path("/groups/"+g.ID+"/members"), nil, &members)
			if !slices.Equal(members.Items, want) || members.LeftOut != leftOut || members.Note == "" {
				t.Errorf("%s: members list %+v, want %v and %d left out, with a note", when, members, want, leftOut)
			}
			f.must(200, f.owner, "GET", f.path("/groups/"+g.ID), nil, &g)
			if g.Members != len(want) || g.LeftOut != leftOut || g.Note == "" {
				t.Errorf("%s: group has %d members and %d left out (%q), want %d and %d with a note", when, g.Members, g.LeftOut, g.Note,
					len(want), leftOut)
			}
			list = api.DeviceListView{}
			f.must(200, f.owner, "GET", f.path("/devices?group="+g.ID), nil, &list)
			got := make([]string, 0, len(list.Items))
			for _, d := range list.Items {
				got = append(got, d.ID)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) || list.LeftOut != leftOut {
				t.Errorf("%s: devices of the group %v and %d left out, want %v and %d", when, got, list.LeftOut, want, leftOut)
			}
		}
		check("before its owner accepted the widening", false)
		accept()
		check("after its owner accepted the widening and it reported again", true)
	})
}
