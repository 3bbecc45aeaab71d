package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// batchStates reads a batch's actions by device: state and refusal code.
func (f *testFleet) batchStates(batchID string) map[string][2]string {
	f.t.Helper()
	var status api.BatchView
	f.must(200, f.owner, "GET", f.path("/actions/"+batchID), nil, &status)
	out := map[string][2]string{}
	for _, a := range status.Actions.Items {
		out[a.DeviceID] = [2]string{a.State, string(a.RefusalCode)}
	}
	return out
}

// TestMacLockAndWipeNeedTheFindMyPINTheMacAsksFor: an Intel Mac says its
// lock and erase need the Find My PIN, and a Mac on macOS 10.15 cannot say
// but needs it too; both are refused a lock or wipe without one, when
// requested and, for a wipe the Mac started needing it for meanwhile, at
// approval. An Apple silicon Mac says it needs none and is locked without.
// A Mac that has not said, not polled yet or under a policy that keeps no
// security state, is asked for one.
func TestMacLockAndWipeNeedTheFindMyPINTheMacAsksFor(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, second := f.admin("second@fleet.test", "administrator")
		_, intelID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.IntelMac = true })
		siliconSim, siliconID := f.enrol("corporate", "", "", mac)
		_, catalinaID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.OSVersion = "10.15.7" })
		lock := func(id string, o actions.Options) reply {
			return f.do(f.owner, "POST", f.path("/devices/"+id+"/actions"),
				api.DeviceActionRequest{Action: actions.Lock, Reason: "left in a taxi, lock it now", Options: o})
		}

		for name, id := range map[string]string{"the Intel Mac": intelID, "the Mac on macOS 10.15": catalinaID} {
			if r := lock(id, actions.Options{}); r.status != 400 || !strings.Contains(string(r.body), mdm.SkipPINRequired) {
				t.Errorf("a lock of %s without a PIN: %d %s, want 400 %s", name, r.status, r.body, mdm.SkipPINRequired)
			}
			if r := lock(id, actions.Options{PIN: "123456"}); r.status != 201 {
				t.Errorf("a lock of %s with a PIN: %d %s", name, r.status, r.body)
			}
		}
		if r := lock(siliconID, actions.Options{}); r.status != 201 {
			t.Errorf("a lock of the Apple silicon Mac without a PIN: %d %s", r.status, r.body)
		}
		// What a Mac said is a group rule's fact: the Macs to keep PINs for.
		var needPIN api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Macs that need a PIN", Kind: "dynamic",
			Rule: json.RawMessage(`{"attr":"security.pin_required_for_lock","op":"eq","value":true}`)}, &needPIN)
		f.must(200, f.owner, "POST", f.path("/groups/"+needPIN.ID+"/refresh"), nil, nil)
		var members api.GroupMembersView
		f.must(200, f.owner, "GET", f.path("/groups/"+needPIN.ID+"/members"), nil, &members)
		if len(members.Items) != 1 || members.Items[0] != intelID {
			t.Errorf("the Macs that said they need a PIN: %v, want the Intel Mac alone", members.Items)
		}
		// A Mac whose first DeviceInformation is still to come has not said
		// whether it needs a PIN, whether or not its Authenticate named its
		// macOS: a PIN is asked for.
		_, quietID := f.enrolUnpolled("corporate", "", "", func(d *sim.Device) { mac(d); d.OSVersion = "" })
		_, sonomaID := f.enrolUnpolled("corporate", "", "", func(d *sim.Device) { mac(d); d.IntelMac = true; d.OSVersion = "14.6" })
		for name, id := range map[string]string{"a Mac not heard from yet": quietID, "a Mac on macOS 14 not polled yet": sonomaID} {
			if r := lock(id, actions.Options{}); r.status != 400 || !strings.Contains(string(r.body), mdm.SkipPINRequired) {
				t.Errorf("a lock of %s without a PIN: %d %s, want 400 %s", name, r.status, r.body, mdm.SkipPINRequired)
			}
		}

		var bulk actions.Batch
		f.must(201, f.owner, "POST", f.path("/actions"), actions.Request{Action: actions.Lock, Reason: "the office was broken into",
			DeviceIDs: []string{intelID, siliconID, catalinaID}}, &bulk)
		want := map[string][2]string{intelID: {store.ActionRefused, mdm.SkipPINRequired},
			catalinaID: {store.ActionRefused, mdm.SkipPINRequired}, siliconID: {store.ActionQueued, ""}}
		if got := f.batchStates(bulk.ID); len(got) != 3 || got[intelID] != want[intelID] || got[catalinaID] != want[catalinaID] ||
			got[siliconID] != want[siliconID] {
			t.Errorf("a bulk lock without a PIN: %v, want %v", got, want)
		}

		// Refused before any second admin is asked.
		wipe := func(id string) reply {
			return f.do(f.owner, "POST", f.path("/devices/"+id+"/actions"),
				api.DeviceActionRequest{Action: actions.Wipe, Reason: "stolen from the office, police report 4711"})
		}
		if r := wipe(intelID); r.status != 400 || !strings.Contains(string(r.body), mdm.SkipPINRequired) {
			t.Errorf("a wipe of the Intel Mac without a PIN: %d %s, want 400 %s", r.status, r.body, mdm.SkipPINRequired)
		}

		// The approval checks again: the Mac said meanwhile that it needs one.
		var parked actions.Batch
		if r := wipe(siliconID); r.status != 201 {
			t.Fatalf("a wipe of the Apple silicon Mac without a PIN: %d %s", r.status, r.body)
		} else if err := json.Unmarshal(r.body, &parked); err != nil || parked.ApprovalID == "" {
			t.Fatalf("the wipe did not wait for approval: %s", r.body)
		}
		siliconSim.IntelMac = true
		f.syncDevice(siliconSim, siliconID)
		f.must(200, second, "POST", f.path("/action-approvals/"+parked.ApprovalID), actions.Decision{Approve: true}, nil)
		if got := f.batchStates(parked.ID)[siliconID]; got != [2]string{store.ActionRefused, mdm.SkipPINRequired} {
			t.Errorf("the wipe approved after the Mac said it needs a PIN: %v, want refused %s", got, mdm.SkipPINRequired)
		}

		// Where the policy keeps no security state, no Mac can say: an
		// Intel Mac on macOS 14, polled, is asked for a PIN all the same.
		var dropped api.PolicyChangeView
		f.must(200, f.owner, "POST", f.path("/privacy/policy-changes"), api.PolicyChangeRequest{Reason: "no security state of company Macs",
			Changes: []privacy.Change{{Ownership: privacy.Corporate, Category: privacy.SecurityState, Mode: privacy.Drop}}}, &dropped)
		if !dropped.Applied {
			t.Fatalf("dropping corporate security state: %+v", dropped)
		}
		_, unsaidID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.IntelMac = true; d.OSVersion = "14.6" })
		if r := lock(unsaidID, actions.Options{}); r.status != 400 || !strings.Contains(string(r.body), mdm.SkipPINRequired) {
			t.Errorf("a lock of an Intel Mac whose policy drops security state, without a PIN: %d %s, want 400 %s", r.status, r.body, mdm.SkipPINRequired)
		}
		if r := lock(unsaidID, actions.Options{PIN: "123456"}); r.status != 201 {
			t.Errorf("a lock of that Mac with a PIN: %d %s", r.status, r.body)
		}
	})
}
