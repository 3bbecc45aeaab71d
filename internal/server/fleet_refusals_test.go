package server

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/exporttest"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestBulkActionRefusalsCarryCodes: each device a bulk action refuses
// carries a stable code beside the text (leaving, its ownership, not
// supervised, not enrolled), and the device it acts on carries none.
func TestBulkActionRefusalsCarryCodes(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, leavingID := f.leavingPhone()
		paul, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "paul@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		_, personalID := f.enrol("personal", paul.ID, "", nil)
		_, corporateID := f.enrol("corporate", "", "", nil)
		_, supervisedID := f.enrol("corporate", "", "", func(d *sim.Device) { d.Supervised = true })
		_, goneID := f.enrol("corporate", "", "", nil)
		if _, err := f.app.Privacy.DeprovisionDevice(f.ctx, f.tenant, goneID, "handed back to the leasing company", iam.SystemActor); err != nil {
			t.Fatal(err)
		}

		var bulk actions.Batch
		f.must(201, f.owner, "POST", f.path("/actions"), actions.Request{Action: actions.LostMode, Reason: "find every device of the office",
			DeviceIDs: []string{leavingID, personalID, corporateID, supervisedID, goneID}, Options: actions.Options{Message: "Call IT"}}, &bulk)
		var status api.BatchView
		f.must(200, f.owner, "GET", f.path("/actions/"+bulk.ID), nil, &status)
		want := map[string]struct{ state, code string }{
			leavingID:    {store.ActionRefused, actions.RefusedLeaving},
			personalID:   {store.ActionRefused, mdm.SkipOwnership},
			goneID:       {store.ActionRefused, mdm.SkipNotEnrolled},
			corporateID:  {store.ActionRefused, mdm.SkipUnsupervised},
			supervisedID: {store.ActionQueued, ""},
		}
		if len(status.Actions.Items) != len(want) {
			t.Fatalf("the bulk lost mode: %+v", status.Actions.Items)
		}
		for _, a := range status.Actions.Items {
			w := want[a.DeviceID]
			if a.State != w.state || string(a.RefusalCode) != w.code || (w.state == store.ActionRefused && a.Error == "") {
				t.Errorf("device %s: %s %q (%q), want %s %q with its text", a.DeviceID, a.State, a.RefusalCode, a.Error, w.state, w.code)
			}
		}
	})
}

// TestApprovalAfterTheWithdrawalIsRefusedAsLeaving: a retire that awaited
// its second admin while the phone's employee withdrew consent is refused
// at approval with the code a request for a leaving device gets.
func TestApprovalAfterTheWithdrawalIsRefusedAsLeaving(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, second := f.admin("second@fleet.test", "administrator")
		var wipe actions.Batch
		_, phoneID := f.leavingPhoneAfter(func(phoneID string) {
			f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/actions"),
				api.DeviceActionRequest{Action: actions.Retire, Reason: "lost on the train, police report 4711"}, &wipe)
			if wipe.ApprovalID == "" {
				t.Fatalf("the retire did not wait for approval: %+v", wipe)
			}
		})
		f.must(200, second, "POST", f.path("/action-approvals/"+wipe.ApprovalID), actions.Decision{Approve: true}, &wipe)
		var status api.BatchView
		f.must(200, f.owner, "GET", f.path("/actions/"+wipe.ID), nil, &status)
		if len(status.Actions.Items) != 1 {
			t.Fatalf("the retire's batch: %+v", status.Actions.Items)
		}
		if a := status.Actions.Items[0]; a.DeviceID != phoneID || a.State != store.ActionRefused ||
			string(a.RefusalCode) != actions.RefusedLeaving || !strings.Contains(a.Error, "leaving management") {
			t.Errorf("the approved retire of the leaving phone: %s %q (%q), want refused %q", a.State, a.RefusalCode, a.Error, actions.RefusedLeaving)
		}
	})
}

// TestRemoteActionsInTheExport: the person whose device an admin asked to
// wipe sees it in their data export, with who asked and why, also when the
// second admin rejected it and it never ran.
func TestRemoteActionsInTheExport(t *testing.T) {
	f := newFleet(t, storetest.OpenSQLite(t))
	_, second := f.admin("second@fleet.test", "administrator")
	erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
	if err != nil {
		t.Fatal(err)
	}
	_, laptopID := f.enrol("corporate", erika.ID, "", nil)
	var wipe actions.Batch
	f.must(201, f.owner, "POST", f.path("/devices/"+laptopID+"/actions"),
		api.DeviceActionRequest{Action: actions.Wipe, Reason: "left at the airport, ticket 815"}, &wipe)
	if wipe.ApprovalID == "" {
		t.Fatalf("the wipe did not wait for approval: %+v", wipe)
	}
	f.must(200, second, "POST", f.path("/action-approvals/"+wipe.ApprovalID), actions.Decision{Approve: false}, &wipe)
	arc, err := f.app.Privacy.ExportSubject(f.ctx, f.tenant, erika.ID, "subject access request", iam.SystemActor)
	if err != nil {
		t.Fatal(err)
	}
	exp, _, _ := exporttest.Open(t, arc)
	for _, d := range exp.Devices {
		for _, r := range d.Management {
			if strings.HasPrefix(r.Name, "Remote action wipe") {
				if !strings.Contains(r.Value, "left at the airport, ticket 815") || !strings.Contains(r.Value, "rejected") {
					t.Errorf("the wipe exported as %q", r.Value)
				}
				return
			}
		}
	}
	t.Fatalf("the rejected wipe is not in the export: %+v", exp.Devices)
}
