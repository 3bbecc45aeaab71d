package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// lastAction is the newest of a device's actions.
func (f *testFleet) lastAction(deviceID string) api.ActionView {
	f.t.Helper()
	var list api.List[api.ActionView]
	f.must(200, f.owner, "GET", f.path("/devices/"+deviceID+"/actions"), nil, &list)
	if len(list.Items) == 0 {
		f.t.Fatalf("device %s has no actions", deviceID)
	}
	return list.Items[0]
}

// TestMacLockPINIsKeptForWhoeverUnlocksIt: the Find My PIN of a Mac's
// lock is kept sealed, never in clear, and given to an admin who may lock
// the device, for a reason, on the audit record; not to one who may not,
// nor for another device's path, nor for an iPhone's lock, which carries
// none; a refused reveal is audited too. A compliance ladder's lock, which
// no admin chose a PIN for, gets one of Steward's drawing, which the Mac is
// sent and an admin can read; a second ladder's lock while the first is
// queued adds none, and an employee's own Mac is not locked with a PIN.
func TestMacLockPINIsKeptForWhoeverUnlocksIt(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, help := f.admin("help@fleet.test", "helpdesk")
		_, reader := f.admin("reader@fleet.test", "readonly")
		var sales api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Sales", Kind: "static"}, &sales)
		_, salesDesk := f.admin("sales-desk@fleet.test", "helpdesk", sales.ID)
		intel, intelID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.IntelMac = true })
		_, phoneID := f.enrol("corporate", "", "", nil)
		lock := func(id, pin string) {
			f.must(201, f.owner, "POST", f.path("/devices/"+id+"/actions"),
				api.DeviceActionRequest{Action: actions.Lock, Reason: "left on the night train", Options: actions.Options{PIN: pin}}, nil)
		}
		reveal := func(secret, deviceID, actionID, reason string) reply {
			return f.do(secret, "POST", f.path("/devices/"+deviceID+"/actions/"+actionID+"/pin"), api.ActionPINRequest{Reason: reason})
		}

		lock(intelID, "482913")
		f.poll(intel)
		if intel.LockPIN != "482913" {
			t.Fatalf("the Mac was locked with PIN %q", intel.LockPIN)
		}
		locked := f.lastAction(intelID)
		if strings.Contains(string(storetest.AllValues(t, st)), "482913") {
			t.Error("the PIN is stored in clear")
		}
		var got api.ActionPINView
		if r := reveal(help, intelID, locked.ID, "the employee is at the desk with the Mac"); r.status != 200 ||
			json.Unmarshal(r.body, &got) != nil || got.PIN != "482913" {
			t.Fatalf("the help desk asking for the PIN: %d %s", r.status, r.body)
		}
		entries, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.action.pin.reveal"})
		if err != nil || len(entries) != 1 || entries[0].TargetID != intelID || entries[0].Reason != "the employee is at the desk with the Mac" ||
			strings.Contains(string(entries[0].Details), "482913") {
			t.Errorf("the reveal's audit entries: %+v, %v", entries, err)
		}
		for name, c := range map[string]struct {
			secret, device, reason string
			want                   int
		}{
			"without a reason":             {help, intelID, "", 400},
			"by a read-only admin":         {reader, intelID, "the employee is at the desk with the Mac", 403},
			"by another group's help desk": {salesDesk, intelID, "the employee is at the desk with the Mac", 404},
			"under another device's path":  {help, phoneID, "the employee is at the desk with the Mac", 404},
		} {
			if r := reveal(c.secret, c.device, locked.ID, c.reason); r.status != c.want || strings.Contains(string(r.body), "482913") {
				t.Errorf("the PIN %s: %d %s, want %d", name, r.status, r.body, c.want)
			}
		}
		reveals, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.action.pin.reveal"})
		if err != nil || len(reveals) != 2 || reveals[1].Outcome != "denied" || reveals[1].TargetID != intelID {
			t.Errorf("the read-only admin's refused reveal on the audit record: %+v, %v", reveals, err)
		}
		lock(phoneID, "")
		if r := reveal(help, phoneID, f.lastAction(phoneID).ID, "the employee is at the desk with the phone"); r.status != 404 {
			t.Errorf("the PIN of an iPhone's lock: %d %s, want 404", r.status, r.body)
		}
		// A Mac before 10.8 has no Find My PIN: it is sent none, so none is
		// kept for an admin to hand on.
		lion, lionID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.OSVersion = "10.7.5" })
		lock(lionID, "246810")
		f.poll(lion)
		if old := f.lastAction(lionID); old.State != store.ActionDone || lion.LockPIN != "" {
			t.Errorf("the lock of a Mac on 10.7: %+v, the Mac's PIN %q", old, lion.LockPIN)
		} else if r := reveal(help, lionID, old.ID, "the employee is at the desk with the Mac"); r.status != 404 {
			t.Errorf("the PIN of a lock a Mac on 10.7 was sent without one: %d %s, want 404", r.status, r.body)
		}

		// A ladder's lock: Steward draws the PIN the Intel Mac needs. The
		// employee typed the admin's PIN first: the Mac checks in again (a
		// Mac still at its lock is not locked again).
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			return q.Devices().Touch(f.ctx, f.tenant, intelID, time.Now().Add(2*time.Minute))
		}); err != nil {
			t.Fatal(err)
		}
		d, err := st.Read().Devices().Get(f.ctx, f.tenant, intelID)
		if err != nil {
			t.Fatal(err)
		}
		ladder := func(d store.Device) {
			t.Helper()
			if err := st.Tx(f.ctx, func(q store.Queries) error {
				return f.app.Actions.Automatic(f.ctx, q, d, actions.Lock, "compliance policy \"Baseline\": FileVault is off", actions.Rule{}, iam.SystemActor)
			}); err != nil {
				t.Fatal(err)
			}
		}
		ladder(d)
		ladder(d) // a second policy's ladder: the Mac is being locked already
		f.poll(intel)
		drawn := f.lastAction(intelID)
		if skipped, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.action.lock.skipped"}); err != nil ||
			len(skipped) != 1 || !strings.Contains(string(skipped[0].Details), drawn.ID) || !strings.Contains(string(skipped[0].Details), "queued already") {
			t.Errorf("the second ladder's lock on the audit record: %+v, %v", skipped, err)
		}
		var all api.List[api.ActionView]
		f.must(200, f.owner, "GET", f.path("/devices/"+intelID+"/actions"), nil, &all)
		if len(all.Items) != 2 {
			t.Errorf("%d actions on the Mac after the admin's lock and two ladders' locks, want 2", len(all.Items))
		}
		if drawn.ID == locked.ID || drawn.State != store.ActionDone || len(intel.LockPIN) != 6 || intel.LockPIN == "482913" {
			t.Fatalf("the ladder's lock: %+v, the Mac's PIN %q", drawn, intel.LockPIN)
		}
		got = api.ActionPINView{}
		if r := reveal(help, intelID, drawn.ID, "the employee fixed FileVault and needs the Mac back"); r.status != 200 ||
			json.Unmarshal(r.body, &got) != nil || got.PIN != intel.LockPIN {
			t.Errorf("the ladder's PIN: %d %s, want %s", r.status, r.body, intel.LockPIN)
		}

		// An employee's own Intel Mac is not locked with a PIN they could
		// not learn: the ladder's lock is refused.
		erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		_, ownID := f.enrol("personal", erika.ID, "", func(d *sim.Device) { mac(d); d.IntelMac = true })
		own, err := st.Read().Devices().Get(f.ctx, f.tenant, ownID)
		if err != nil {
			t.Fatal(err)
		}
		ladder(own)
		if a := f.lastAction(ownID); a.State != store.ActionRefused || a.RefusalCode != "pin_required" {
			t.Errorf("the ladder's lock of an employee's own Intel Mac: %+v, want refused pin_required", a)
		}
	})
}
