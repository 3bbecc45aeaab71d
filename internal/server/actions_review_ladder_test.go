package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// ladderApproval is what a ladder's approval shows the second admin.
type ladderApproval struct {
	Action       string    `json:"action"`
	PolicyID     string    `json:"policy_id"`
	PolicyName   string    `json:"policy_name"`
	FailingSince time.Time `json:"failing_since"`
	WaitsBecause string    `json:"waits_because"`
}

// deviceActions reads a device's actions from the store, newest first.
func (f *testFleet) ladderActionsOf(id string) []store.DeviceAction {
	f.t.Helper()
	acts, err := f.app.Store.Read().Actions().ForDevice(f.ctx, f.tenant, id, store.Page{Limit: 50})
	if err != nil {
		f.t.Fatal(err)
	}
	return acts
}

// storedAction reads an action from the store.
func (f *testFleet) storedAction(id string) store.DeviceAction {
	f.t.Helper()
	a, err := f.app.Store.Read().Actions().Get(f.ctx, f.tenant, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// ladderApprovalOf reads the approval an action waits on.
func (f *testFleet) ladderApprovalOf(a store.DeviceAction) (store.Approval, ladderApproval) {
	f.t.Helper()
	ap, err := f.app.Store.Read().Approvals().Get(f.ctx, f.tenant, a.ApprovalID)
	if err != nil {
		f.t.Fatalf("the approval of action %s: %v", a.ID, err)
	}
	var p ladderApproval
	if err := json.Unmarshal(ap.Payload, &p); err != nil {
		f.t.Fatal(err)
	}
	return ap, p
}

// TestLadderLocksPastTheBulkThresholdWaitForASecondAdmin: a policy that
// fails on more devices than bulk_approval_threshold locks that many on
// its own within 24 hours; the tenant's further ladder locks wait for a
// second admin, naming the policy and why. Its author cannot approve
// them; another admin can. A day later, ladders lock on their own again.
func TestLadderLocksPastTheBulkThresholdWaitForASecondAdmin(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, second := f.admin("second@fleet.test", "administrator")
		settings := device.DefaultSettings()
		settings.BulkApprovalThreshold = 2
		f.must(200, f.owner, "PUT", f.path("/device-settings"), settings, nil)
		var ids []string
		for range 4 {
			_, id := f.enrol("corporate", "", "", nil)
			ids = append(ids, id)
		}
		ladder := compliance.Ladder{{Action: compliance.StepLock}}
		var pol api.PolicyView
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Platform: "ios", Name: "Impossible",
			Rules: compliance.Rules{MinOSVersion: "99.0"}, Ladder: &ladder}, &pol)
		if _, err := f.app.Compliance.RunDueSteps(f.ctx, 100); err != nil {
			t.Fatal(err)
		}
		var queued, waiting []store.DeviceAction
		for _, id := range ids {
			acts := f.ladderActionsOf(id)
			if len(acts) != 1 || acts[0].Action != string(actions.Lock) {
				t.Fatalf("device %s's actions: %+v, want one lock", id, acts)
			}
			switch acts[0].State {
			case store.ActionQueued:
				queued = append(queued, acts[0])
			case store.ActionAwaitingApproval:
				waiting = append(waiting, acts[0])
			}
		}
		if len(queued) != 2 || len(waiting) != 2 {
			t.Fatalf("the ladder's locks: %d queued, %d awaiting approval; want 2 and 2 (threshold 2)", len(queued), len(waiting))
		}
		stored, err := st.Read().Compliance().GetPolicy(f.ctx, f.tenant, pol.ID)
		if err != nil {
			t.Fatal(err)
		}
		owner := stored.UpdatedBy
		for _, w := range waiting {
			ap, p := f.ladderApprovalOf(w)
			if ap.RequestedBy != owner || p.PolicyID != pol.ID || p.PolicyName != "Impossible" ||
				!strings.Contains(p.WaitsBecause, "bulk_approval_threshold") || !strings.Contains(ap.Reason, `compliance policy "Impossible"`) {
				t.Errorf("the approval of a held lock: %+v %+v", ap, p)
			}
		}
		if r := f.do(f.owner, "POST", f.path("/action-approvals/"+waiting[0].ApprovalID), actions.Decision{Approve: true}); r.status != 403 {
			t.Errorf("the policy's author approved its ladder's lock: %d %s", r.status, r.body)
		}
		f.must(200, second, "POST", f.path("/action-approvals/"+waiting[0].ApprovalID), actions.Decision{Approve: true}, nil)
		if got := f.ladderActionsOf(waiting[0].DeviceID)[0]; got.State != store.ActionQueued || got.CommandID == "" {
			t.Errorf("the approved lock: %+v", got)
		}
		entries, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.action.lock.automatic"})
		if err != nil || len(entries) != 2 {
			t.Errorf("locks audited as sent by a rule on its own: %d (%v), want 2", len(entries), err)
		}

		// The count covers 24 hours: past them, a ladder locks on its own.
		f.app.Actions.SetClock(func() time.Time { return time.Now().Add(25 * time.Hour) })
		defer f.app.Actions.SetClock(time.Now)
		_, lateID := f.enrol("corporate", "", "", nil)
		if _, err := f.app.Compliance.RunDueSteps(f.ctx, 100); err != nil {
			t.Fatal(err)
		}
		if acts := f.ladderActionsOf(lateID); len(acts) != 1 || acts[0].State != store.ActionQueued {
			t.Errorf("a ladder's lock a day later: %+v, want queued", acts)
		}
	})
}

// TestLadderRequestApprovedAfterTheDeviceWasFixed: a retire a policy's
// ladder asked for is carried out on approval only while the device still
// fails that policy in the run that asked. Fixed, or fixed and failing
// again (its ladder starts over), approving it is refused with the reason,
// the action refused and the device kept; the refusal is audited.
func TestLadderRequestApprovedAfterTheDeviceWasFixed(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, second := f.admin("second@fleet.test", "administrator")
		noPasscode := func(d *sim.Device) { d.NoPasscode = true }
		_, failingID := f.enrol("corporate", "", "", noPasscode)
		fixed, fixedID := f.enrol("corporate", "", "", noPasscode)
		again, againID := f.enrol("corporate", "", "", noPasscode)
		ladder := compliance.Ladder{{Action: compliance.StepRetire}}
		var pol api.PolicyView
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Passcode",
			Rules: compliance.Rules{PasscodeRequired: true}, Ladder: &ladder}, &pol)
		if _, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil {
			t.Fatal(err)
		}
		retire := map[string]store.DeviceAction{}
		for _, id := range []string{failingID, fixedID, againID} {
			acts := f.ladderActionsOf(id)
			if len(acts) != 1 || acts[0].State != store.ActionAwaitingApproval {
				t.Fatalf("device %s's ladder retire: %+v", id, acts)
			}
			if _, p := f.ladderApprovalOf(acts[0]); p.PolicyID != pol.ID || p.FailingSince.IsZero() {
				t.Errorf("the approval does not name the policy and its failing run: %+v", p)
			}
			retire[id] = acts[0]
		}
		fixed.NoPasscode = false
		f.syncDevice(fixed, fixedID)
		again.NoPasscode = false
		f.syncDevice(again, againID)
		again.NoPasscode = true
		f.syncDevice(again, againID)
		if c := f.device(f.owner, fixedID).Compliance; c != store.ComplianceCompliant {
			t.Fatalf("the fixed device: %q", c)
		}
		if c := f.device(f.owner, againID).Compliance; c == store.ComplianceCompliant {
			t.Fatalf("the device failing again: %q", c)
		}

		for id, want := range map[string]string{fixedID: "no longer fails the policy", againID: "ladder started over"} {
			r := f.do(second, "POST", f.path("/action-approvals/"+retire[id].ApprovalID), actions.Decision{Approve: true})
			if r.status != 409 || !strings.Contains(string(r.body), want) || !strings.Contains(string(r.body), "Passcode") {
				t.Errorf("approving the retire of a device fixed since: %d %s, want 409 %q", r.status, r.body, want)
			}
			got := f.storedAction(retire[id].ID)
			if got.State != store.ActionRefused || !strings.Contains(got.Error, want) || got.CommandID != "" {
				t.Errorf("the retire refused at approval: %+v", got)
			}
			if d := f.device(f.owner, id); d.State != store.DeviceEnrolled {
				t.Errorf("the device fixed since: %q, want enrolled", d.State)
			}
			denied, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.action.decide",
				TargetID: retire[id].ApprovalID})
			if err != nil || len(denied) != 1 || denied[0].Outcome != "denied" || !strings.Contains(denied[0].Reason, want) {
				t.Errorf("the refused approval's audit: %+v %v", denied, err)
			}
			// Asked again, it is refused again; nothing is left to reject.
			if r := f.do(second, "POST", f.path("/action-approvals/"+retire[id].ApprovalID), actions.Decision{Approve: true}); r.status != 409 {
				t.Errorf("approving it again: %d %s", r.status, r.body)
			}
		}
		f.must(200, second, "POST", f.path("/action-approvals/"+retire[againID].ApprovalID), actions.Decision{Approve: false}, nil)
		if got := f.storedAction(retire[againID].ID); got.State != store.ActionRefused {
			t.Errorf("rejecting a refused request changed its action: %+v", got)
		}

		// The device still failing since the request is retired.
		f.must(200, second, "POST", f.path("/action-approvals/"+retire[failingID].ApprovalID), actions.Decision{Approve: true}, nil)
		if got := f.storedAction(retire[failingID].ID); got.State != store.ActionQueued {
			t.Errorf("the retire of the device still failing: %+v", got)
		}
	})
}

// TestLadderLockTheRulesRefuseWaitsForNoOne: past the threshold a ladder's
// lock would wait for a second admin, but one the device's rules refuse
// (an Apple silicon Mac on macOS 11.3, which a lock would deactivate) is
// refused at once, as an admin's request is, and asks no one.
func TestLadderLockTheRulesRefuseWaitsForNoOne(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		settings := device.DefaultSettings()
		settings.BulkApprovalThreshold = 1
		f.must(200, f.owner, "PUT", f.path("/device-settings"), settings, nil)
		_, intelID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.IntelMac = true })
		ladder := compliance.Ladder{{Action: compliance.StepLock}}
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Platform: "macos", Name: "Impossible",
			Rules: compliance.Rules{MinOSVersion: "99.0"}, Ladder: &ladder}, nil)
		if _, err := f.app.Compliance.RunDueSteps(f.ctx, 100); err != nil {
			t.Fatal(err)
		}
		if acts := f.ladderActionsOf(intelID); len(acts) != 1 || acts[0].State != store.ActionQueued {
			t.Fatalf("the first ladder lock, within the threshold: %+v", acts)
		}
		_, siliconID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.OSVersion = "11.3" })
		if _, err := f.app.Compliance.RunDueSteps(f.ctx, 100); err != nil {
			t.Fatal(err)
		}
		acts := f.ladderActionsOf(siliconID)
		if len(acts) != 1 || acts[0].State != store.ActionRefused || acts[0].RefusalCode != mdm.SkipUnsupported || acts[0].ApprovalID != "" {
			t.Fatalf("the lock of an Apple silicon Mac on 11.3 past the threshold: %+v, want refused at once", acts)
		}
	})
}
