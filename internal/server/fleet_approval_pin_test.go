package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// storedApproval is an action's approval as its row holds it, with its
// payload read.
type storedApproval struct {
	store.Approval
	BatchID string       `json:"batch_id"`
	Action  actions.Kind `json:"action"`
	Devices int          `json:"devices"`
	Options []byte       `json:"sealed_options"`
}

func (f *testFleet) storedApproval(id string) storedApproval {
	f.t.Helper()
	a, err := f.app.Store.Read().Approvals().Get(f.ctx, f.tenant, id)
	if err != nil {
		f.t.Fatal(err)
	}
	out := storedApproval{Approval: a}
	if err := json.Unmarshal(a.Payload, &out); err != nil {
		f.t.Fatalf("approval %s's payload %s: %v", id, a.Payload, err)
	}
	return out
}

// TestSettledApprovalKeepsNoPIN: a wipe parked for a second admin keeps
// its options (the Find My PIN) sealed in its approval only while it can
// still be approved. Rejected, approved (once its action holds the PIN),
// refused as too late, lapsed with no one looking, or decided before
// deciding dropped them (swept), the approval keeps its record (who asked,
// what, which devices, why, the decision) and no options; the approved
// wipe still carries its PIN, and a master-key rotation afterwards has
// nothing of theirs to re-seal.
func TestSettledApprovalKeepsNoPIN(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, second := f.admin("second@fleet.test", "administrator")
		const reason = "stolen from the office, police report 4711"
		park := func(pin string) (macSim *sim.Device, deviceID string, b actions.Batch) {
			t.Helper()
			macSim, deviceID = f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.IntelMac = true })
			f.must(201, f.owner, "POST", f.path("/devices/"+deviceID+"/actions"),
				api.DeviceActionRequest{Action: actions.Wipe, Reason: reason, Options: actions.Options{PIN: pin}}, &b)
			if b.ApprovalID == "" {
				t.Fatalf("the wipe did not wait for approval: %+v", b)
			}
			if a := f.storedApproval(b.ApprovalID); len(a.Options) == 0 {
				t.Fatalf("the waiting wipe's approval holds no options: %+v", a)
			}
			return macSim, deviceID, b
		}
		decide := func(b actions.Batch, approve bool) reply {
			return f.do(second, "POST", f.path("/action-approvals/"+b.ApprovalID), actions.Decision{Approve: approve})
		}
		keptNoOptions := func(what string, b actions.Batch, state string) {
			t.Helper()
			a := f.storedApproval(b.ApprovalID)
			if len(a.Options) != 0 {
				t.Errorf("the %s wipe's approval still holds its sealed options", what)
			}
			if a.State != state || a.Reason != reason || a.RequestedBy == "" || a.BatchID != b.ID || a.Action != actions.Wipe || a.Devices != 1 {
				t.Errorf("the %s wipe's approval record: %+v, want %s, its reason, requester, batch, action and device count", what, a, state)
			}
		}

		_, _, rejected := park("111111")
		if r := decide(rejected, false); r.status != 200 {
			t.Fatalf("rejecting: %d %s", r.status, r.body)
		}
		keptNoOptions("rejected", rejected, "rejected")

		approvedMac, approvedID, approved := park("222222")
		if r := decide(approved, true); r.status != 200 {
			t.Fatalf("approving: %d %s", r.status, r.body)
		}
		keptNoOptions("approved", approved, "approved")
		wipe := f.lastAction(approvedID)
		var pin api.ActionPINView
		if wipe.State != store.ActionQueued {
			t.Errorf("the approved wipe: %+v, want queued", wipe)
		} else {
			f.must(200, f.owner, "POST", f.path("/devices/"+approvedID+"/actions/"+wipe.ID+"/pin"),
				api.ActionPINRequest{Reason: "the Mac came back, erased"}, &pin)
			if pin.PIN != "222222" {
				t.Errorf("the approved wipe carries PIN %q, want 222222", pin.PIN)
			}
		}
		f.poll(approvedMac)
		if w := f.lastAction(approvedID); w.ID != wipe.ID || w.State != store.ActionDone {
			t.Errorf("the approved wipe once the Mac fetched it: %+v, want done", w)
		}

		_, _, late := park("333333")
		_, unreadID, unread := park("444444")
		// Decided as deciding did before it dropped the options.
		_, _, decidedBefore := park("555555")
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			return q.Approvals().Decide(f.ctx, f.tenant, decidedBefore.ApprovalID, "rejected", "admin-before", time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		f.at(time.Now().Add(73 * time.Hour)) // past the 72 hours a request waits
		if r := decide(late, true); r.status != 409 {
			t.Fatalf("approving a lapsed request: %d %s, want 409", r.status, r.body)
		}
		keptNoOptions("lapsed", late, "pending")
		if a := f.storedApproval(unread.ApprovalID); len(a.Options) == 0 {
			t.Fatal("a lapsed request no one read lost its options before the sweep")
		}
		if w := f.lastAction(unreadID); w.State != store.ActionAwaitingApproval {
			t.Fatalf("the unread lapsed wipe before the sweep: %+v, want still awaiting approval", w)
		}
		res, err := f.app.Actions.SweepStale(f.ctx)
		if err != nil || res.OptionsForgotten != 2 || res.ApprovalsLapsed != 1 {
			t.Errorf("the hourly sweep: %+v, %v; want the options of 2 approvals forgotten, 1 approval's wipe expired", res, err)
		}
		keptNoOptions("unread lapsed", unread, "pending")
		keptNoOptions("earlier decided", decidedBefore, "rejected")
		// The device's history stops saying it waits, and the audit log says why.
		if w := f.lastAction(unreadID); w.State != store.ActionExpired {
			t.Errorf("the unread lapsed wipe after the sweep: %+v, want expired", w)
		}
		expired, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.action.expire"})
		if err != nil || len(expired) != 1 || expired[0].TargetID != unread.ApprovalID || expired[0].ActorType != store.ActorSystem ||
			!strings.Contains(string(expired[0].Details), unread.ID) {
			t.Errorf("the lapsed wipe's expiry on the audit record: %+v, %v", expired, err)
		}
		if res, err := f.app.Actions.SweepStale(f.ctx); err != nil || res.OptionsForgotten != 0 || res.ApprovalsLapsed != 0 {
			t.Errorf("the next sweep: %+v, %v; want nothing left to settle", res, err)
		}

		// A rotation finds nothing of theirs to open.
		ring, _ := rotatedKeyring(t, f)
		if _, err := store.RunReseal(f.ctx, st, MasterResealJobs(keys.New(ring), ring), 100, nil); err != nil {
			t.Fatalf("a master-key rotation after the approvals' options went: %v", err)
		}
		for what, b := range map[string]actions.Batch{"rejected": rejected, "approved": approved, "unread lapsed": unread} {
			if a := f.storedApproval(b.ApprovalID); len(a.Options) != 0 {
				t.Errorf("the %s wipe's approval holds options again after the rotation", what)
			}
		}
	})
}
