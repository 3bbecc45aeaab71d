package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// actionApprovals returns the tenant's approvals that hold a remote action.
func (f *testFleet) actionApprovals() []store.Approval {
	f.t.Helper()
	all, err := f.app.Store.Read().Approvals().List(f.ctx, f.tenant, store.Page{Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []store.Approval
	for _, a := range all {
		if a.Kind == actions.ApprovalKind {
			out = append(out, a)
		}
	}
	return out
}

// TestWipeTheRulesRefuseIsRefusedBeforeAnyApproval: a wipe of a personal
// phone whose employee did not allow a full wipe, and of a User
// Enrollment, is refused when requested, with the rule's code, and waits
// for no second admin: none would approve what carrying it out refuses.
func TestWipeTheRulesRefuseIsRefusedBeforeAnyApproval(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, second := f.admin("second@fleet.test", "administrator")
		allowed := true
		f.changePolicy(second, "the works council allows a full wipe with the employee's consent",
			privacy.Change{Ownership: privacy.Personal, FullWipe: &allowed})
		f.must(201, f.owner, "POST", f.path("/privacy/notices"), api.NoticeRequest{Ownership: "user_enrolled",
			Translations: []privacy.Translation{{Language: "en", Title: "Your iPhone", Body: "What we manage."}}}, nil)
		paul, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "paul@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		_, personalID := f.enrol("personal", paul.ID, "", nil)
		_, byodID := f.enrol("user_enrolled", paul.ID, "", func(d *sim.Device) { userEnrolment(d); d.Account = "paul@fleet.test" })

		for _, c := range []struct{ name, id, code string }{
			{"a personal phone without full-wipe consent", personalID, mdm.SkipNoConsent},
			// The policy never allows a full wipe of a User Enrollment, which
			// Apple refuses EraseDevice anyway.
			{"a User Enrollment", byodID, mdm.SkipPolicy},
		} {
			r := f.do(f.owner, "POST", f.path("/devices/"+c.id+"/actions"), api.DeviceActionRequest{Action: actions.Wipe,
				Reason: "lost on the train, police report 4711"})
			if r.status != 403 || !strings.Contains(string(r.body), c.code) {
				t.Errorf("the wipe of %s: HTTP %d %s, want 403 %s", c.name, r.status, r.body, c.code)
			}
		}
		if waiting := f.actionApprovals(); len(waiting) != 0 {
			t.Fatalf("refused wipes wait for a second admin: %d approvals", len(waiting))
		}
	})
}

// TestBulkRequestParksOnlyTheDevicesTheRulesAllow: a bulk wipe (a
// two-person action) and a bulk restart over bulk_approval_threshold,
// each mixing devices the rules allow and refuse, record the refused ones
// as refused at once with their codes; only the others wait for a second
// admin and count in the approval. A bulk request no device may take
// creates no approval at all.
func TestBulkRequestParksOnlyTheDevicesTheRulesAllow(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		settings := device.DefaultSettings()
		settings.BulkApprovalThreshold = 1
		f.must(200, f.owner, "PUT", f.path("/device-settings"), settings, nil)
		f.must(201, f.owner, "POST", f.path("/privacy/notices"), api.NoticeRequest{Ownership: "user_enrolled",
			Translations: []privacy.Translation{{Language: "en", Title: "Your iPhone", Body: "What we manage."}}}, nil)
		paul, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "paul@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		_, corporateID := f.enrol("corporate", "", "", nil)
		_, personalID := f.enrol("personal", paul.ID, "", nil)
		_, byodID := f.enrol("user_enrolled", paul.ID, "", func(d *sim.Device) { userEnrolment(d); d.Account = "paul@fleet.test" })
		_, laptopID := f.enrol("corporate", "", "", mac)
		_, desktopID := f.enrol("corporate", "", "", mac)

		check := func(name string, in actions.Request, want map[string][2]string) {
			t.Helper()
			before := len(f.actionApprovals())
			var b actions.Batch
			f.must(201, f.owner, "POST", f.path("/actions"), in, &b)
			got := f.batchStates(b.ID)
			for id, w := range want {
				if got[id] != w {
					t.Errorf("%s: device %s is %v, want %v", name, id, got[id], w)
				}
			}
			waiting := 0
			for _, w := range want {
				if w[0] == store.ActionAwaitingApproval {
					waiting++
				}
			}
			approvals := f.actionApprovals()
			if waiting == 0 {
				if len(approvals) != before || b.ApprovalID != "" {
					t.Errorf("%s: no device may take it, yet an approval was created: %+v", name, b)
				}
				return
			}
			var held struct {
				Devices int `json:"devices"`
			}
			for _, a := range approvals {
				if a.ID == b.ApprovalID {
					if err := json.Unmarshal(a.Payload, &held); err != nil {
						t.Fatal(err)
					}
				}
			}
			if held.Devices != waiting {
				t.Errorf("%s: the approval holds %d devices, want the %d the rules allow", name, held.Devices, waiting)
			}
		}
		refused := func(code string) [2]string { return [2]string{store.ActionRefused, code} }
		parked := [2]string{store.ActionAwaitingApproval, ""}

		check("a bulk wipe", actions.Request{Action: actions.Wipe, Reason: "the office burnt down, insurance claim 77",
			DeviceIDs: []string{corporateID, personalID, byodID}},
			map[string][2]string{corporateID: parked, personalID: refused(mdm.SkipPolicy), byodID: refused(mdm.SkipPolicy)})
		// An iPhone restarts only supervised, and a User Enrollment never;
		// the two Macs may, and are more than the threshold.
		check("a bulk restart", actions.Request{Action: actions.Restart, Reason: "apply the new network settings",
			DeviceIDs: []string{laptopID, desktopID, corporateID, byodID}},
			map[string][2]string{laptopID: parked, desktopID: parked, corporateID: refused(mdm.SkipUnsupervised), byodID: refused(mdm.SkipUnsupported)})
		check("a bulk restart no device may take", actions.Request{Action: actions.Restart, Reason: "apply the new network settings",
			DeviceIDs: []string{corporateID, byodID}},
			map[string][2]string{corporateID: refused(mdm.SkipUnsupervised), byodID: refused(mdm.SkipUnsupported)})
	})
}
