package server

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestDepartedMacKeepsItsPIN: a company Mac that leaves management while it
// still needs its Find My PIN (erased, or deleted while silent at its
// lock, even one whose acknowledgement of the lock never arrived) keeps
// that PIN past its device record, found by the serial number on the Mac,
// for a year, whatever other devices claim its serial number; a Mac that
// checked in after its lock, put its lock off, or removed its profile
// itself keeps none.
func TestDepartedMacKeepsItsPIN(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, second := f.admin("second@fleet.test", "administrator")
		_, help := f.admin("help@fleet.test", "helpdesk")
		var sales api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Sales", Kind: "static"}, &sales)
		_, salesDesk := f.admin("sales-desk@fleet.test", "helpdesk", sales.ID)
		intelMac := func(d *sim.Device) { mac(d); d.IntelMac = true }
		erased, erasedID := f.enrol("corporate", "", "", intelMac)
		atLock, atLockID := f.enrol("corporate", "", "", intelMac)
		back, backID := f.enrol("corporate", "", "", intelMac)
		unanswered, unansweredID := f.enrol("corporate", "", "", intelMac)
		claimed, claimedID := f.enrol("corporate", "", "", intelMac)
		putOff, putOffID := f.enrol("corporate", "", "", intelMac)
		checkedOut, checkedOutID := f.enrol("corporate", "", "", intelMac)
		// An earlier record of the Mac at its lock, left enrolled: no sign
		// that the Mac got past its PIN.
		f.enrol("corporate", "", "", func(d *sim.Device) { intelMac(d); d.Serial = atLock.Serial })
		act := func(id string, k actions.Kind, pin string) {
			t.Helper()
			var b actions.Batch
			f.must(201, f.owner, "POST", f.path("/devices/"+id+"/actions"),
				api.DeviceActionRequest{Action: k, Reason: "stolen from the office, police report 4711", Options: actions.Options{PIN: pin}}, &b)
			if b.ApprovalID != "" {
				f.must(200, second, "POST", f.path("/action-approvals/"+b.ApprovalID), actions.Decision{Approve: true}, nil)
			}
		}
		act(erasedID, actions.Wipe, "135790")
		f.poll(erased)
		act(atLockID, actions.Lock, "246802")
		f.poll(atLock)
		act(backID, actions.Lock, "975310")
		f.poll(back)
		// This one fetched its lock and locked; its answer never arrived.
		act(unansweredID, actions.Lock, "864200")
		if _, err := unanswered.Send(f.ctx, map[string]any{"Status": "Idle", "UDID": unanswered.UDID}); err != nil {
			t.Fatal(err)
		}
		// This one put its lock off (NotNow): it did not lock.
		act(putOffID, actions.Lock, "192837")
		fetched, err := putOff.Send(f.ctx, map[string]any{"Status": "Idle", "UDID": putOff.UDID})
		if err != nil {
			t.Fatal(err)
		}
		var cmd struct{ CommandUUID string }
		if _, err := plist.Unmarshal(fetched, &cmd); err != nil || cmd.CommandUUID == "" {
			t.Fatalf("the lock fetched: %v %s", err, fetched)
		}
		if _, err := putOff.Send(f.ctx, map[string]any{"Status": "NotNow", "UDID": putOff.UDID, "CommandUUID": cmd.CommandUUID}); err != nil {
			t.Fatal(err)
		}
		if err := st.Tx(f.ctx, func(q store.Queries) error { // its PIN was entered; it checked in again
			return q.Devices().Touch(f.ctx, f.tenant, backID, time.Now().Add(5*time.Minute))
		}); err != nil {
			t.Fatal(err)
		}
		// This one's serial number is claimed by a device enrolled after its
		// lock: a device's claim, no proof that the Mac got past its PIN.
		act(claimedID, actions.Lock, "531975")
		f.poll(claimed)
		f.enrol("corporate", "", "", func(d *sim.Device) { intelMac(d); d.Serial = claimed.Serial })
		// This one was unlocked and, minutes later, removed its management
		// profile itself.
		act(checkedOutID, actions.Lock, "314159")
		f.poll(checkedOut)
		f.app.MDM.SetClock(func() time.Time { return time.Now().Add(5 * time.Minute) })
		if _, err := checkedOut.Checkin(f.ctx, checkedOut.CheckOut()); err != nil {
			t.Fatal(err)
		}
		f.app.MDM.SetClock(time.Now)
		for _, id := range []string{atLockID, backID, unansweredID, claimedID, putOffID} {
			act(id, actions.Delete, "")
		}
		for _, id := range []string{erasedID, atLockID, backID, unansweredID, claimedID, putOffID, checkedOutID} {
			if d := f.device(f.owner, id); !(store.Device{State: d.State}).Left() {
				t.Fatalf("device %s did not leave: %q", id, d.State)
			}
		}

		list := func(secret, query string) (api.List[api.DepartedPINView], int) {
			t.Helper()
			var l api.List[api.DepartedPINView]
			r := f.do(secret, "GET", f.path("/departed-pins"+query), nil)
			if r.status == 200 {
				if err := json.Unmarshal(r.body, &l); err != nil {
					t.Fatal(err)
				}
			}
			return l, r.status
		}
		reveal := func(secret, actionID, reason string) reply {
			return f.do(secret, "POST", f.path("/departed-pins/"+actionID+"/pin"), api.ActionPINRequest{Reason: reason})
		}
		all, _ := list(f.owner, "")
		if len(all.Items) != 4 {
			t.Fatalf("kept PINs: %+v, want the erased Mac's and the three deleted at their locks", all.Items)
		}
		if kept, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.action.pin.kept"}); err != nil || len(kept) != 4 {
			t.Errorf("kept PINs on the audit record: %d, %v; want 4", len(kept), err)
		}
		// The purge of the device records, 30 days on, leaves the PINs.
		later := time.Now().Add(privacy.DeprovisionedDeviceRetention + 24*time.Hour)
		f.app.Privacy.SetClock(func() time.Time { return later })
		if _, err := (&privacy.Purger{Service: f.app.Privacy}).RunOnce(f.ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Read().Devices().Get(f.ctx, f.tenant, erasedID); err == nil {
			t.Fatal("the erased Mac's record outlived its retention")
		}
		for _, c := range []struct {
			mac    *sim.Device
			id     string
			action string
			pin    string
		}{{erased, erasedID, "wipe", "135790"}, {atLock, atLockID, "lock", "246802"}, {unanswered, unansweredID, "lock", "864200"},
			{claimed, claimedID, "lock", "531975"}} {
			// The serial number as someone reads it off the Mac's case.
			found, status := list(f.owner, "?serial_number="+url.QueryEscape(" "+strings.ToLower(c.mac.Serial)))
			if status != 200 || len(found.Items) != 1 || found.Items[0].DeviceID != c.id || found.Items[0].Action != c.action ||
				found.Items[0].ExpiresAt.Sub(found.Items[0].LeftAt) != privacy.DepartedPINRetention {
				t.Fatalf("the PIN kept for serial number %s: %d %+v", c.mac.Serial, status, found.Items)
			}
			if byID, _ := list(f.owner, "?device_id="+c.id); len(byID.Items) != 1 || byID.Items[0].ActionID != found.Items[0].ActionID {
				t.Errorf("the PIN kept for device %s: %+v", c.id, byID.Items)
			}
			var got api.ActionPINView
			if r := reveal(f.owner, found.Items[0].ActionID, "the Mac was handed in at reception"); r.status != 200 ||
				json.Unmarshal(r.body, &got) != nil || got.PIN != c.pin {
				t.Errorf("the %s PIN of the departed Mac: %d %s, want %s", c.action, r.status, r.body, c.pin)
			}
		}
		for _, gone := range []string{backID, putOffID, checkedOutID} {
			if found, _ := list(f.owner, "?device_id="+gone); len(found.Items) != 0 {
				t.Errorf("a PIN kept for a Mac unlocked since, or never locked: %+v", found.Items)
			}
		}
		if strings.Contains(string(storetest.AllValues(t, st)), "135790") {
			t.Error("a kept PIN is stored in clear")
		}

		wiped, _ := list(f.owner, "?device_id="+erasedID)
		// device.read on the whole tenant, device.wipe on one group.
		salesAdminID, salesAdmin := f.admin("sales-admin@fleet.test", "administrator", sales.ID)
		f.must(201, f.owner, "POST", f.path("/assignments"), api.AssignmentRequest{AdminID: salesAdminID, RoleID: "readonly"}, nil)
		for name, c := range map[string]struct {
			secret, reason string
			want           int
		}{
			"without a reason":                   {f.owner, "", 400},
			"by a group's help desk":             {salesDesk, "the Mac was handed in at reception", 403},
			"by a help desk without device.wipe": {help, "the Mac was handed in at reception", 403},
			"by a group's administrator":         {salesAdmin, "the Mac was handed in at reception", 403},
		} {
			if r := reveal(c.secret, wiped.Items[0].ActionID, c.reason); r.status != c.want || strings.Contains(string(r.body), "135790") {
				t.Errorf("the departed Mac's PIN %s: %d %s, want %d", name, r.status, r.body, c.want)
			}
		}
		if _, status := list(salesDesk, ""); status != 403 {
			t.Errorf("a group's help desk listing departed Macs' PINs: %d, want 403", status)
		}
		if r := reveal(f.owner, "no-such-action", "the Mac was handed in at reception"); r.status != 404 {
			t.Errorf("an unknown kept PIN: %d", r.status)
		}
		entries, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.action.pin.reveal"})
		if err != nil {
			t.Fatal(err)
		}
		outcomes := map[string]int{}
		for _, e := range entries {
			outcomes[e.Outcome]++
			if !strings.Contains(string(e.Details), `"departed":true`) {
				t.Errorf("a departed Mac's PIN reveal not marked departed: %s", e.Details)
			}
			if strings.Contains(string(e.Details), "135790") || strings.Contains(string(e.Details), "246802") {
				t.Errorf("a PIN in the audit record: %s", e.Details)
			}
		}
		// The group's help desk is refused at the route, before any PIN is
		// looked up; the others at the PIN.
		if outcomes["success"] != 4 || outcomes["denied"] != 2 {
			t.Errorf("the reveals on the audit record: %v, want 4 successes and 2 refusals", outcomes)
		}

		// A year after they left, the PINs go too.
		f.app.Privacy.SetClock(func() time.Time { return time.Now().Add(privacy.DepartedPINRetention + 24*time.Hour) })
		if _, err := (&privacy.Purger{Service: f.app.Privacy}).RunOnce(f.ctx); err != nil {
			t.Fatal(err)
		}
		if all, _ := list(f.owner, ""); len(all.Items) != 0 {
			t.Errorf("kept PINs after their retention: %+v", all.Items)
		}
	})
}

// TestOwnMacKeepsNoPINPastDeparture: an employee's own Mac leaves nothing
// behind, whatever its actions carried.
func TestOwnMacKeepsNoPINPastDeparture(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		own, ownID := f.enrol("personal", erika.ID, "", func(d *sim.Device) { mac(d); d.IntelMac = true })
		f.must(201, f.owner, "POST", f.path("/devices/"+ownID+"/actions"),
			api.DeviceActionRequest{Action: actions.Lock, Reason: "reported stolen by its owner", Options: actions.Options{PIN: "112233"}}, nil)
		f.poll(own)
		if own.LockPIN != "112233" {
			t.Fatalf("the employee's Mac was not locked: %q", own.LockPIN)
		}
		// Deleted while silent at its lock, as a company Mac keeps its PIN.
		_, second := f.admin("second@fleet.test", "administrator")
		var b actions.Batch
		f.must(201, f.owner, "POST", f.path("/devices/"+ownID+"/actions"),
			api.DeviceActionRequest{Action: actions.Delete, Reason: "reported stolen by its owner"}, &b)
		f.must(200, second, "POST", f.path("/action-approvals/"+b.ApprovalID), actions.Decision{Approve: true}, nil)
		if d := f.device(f.owner, ownID); !(store.Device{State: d.State}).Left() {
			t.Fatalf("the employee's Mac did not leave: %q", d.State)
		}
		if kept, err := st.Read().DepartedPINs().List(f.ctx, f.tenant, store.DepartedPINFilter{}); err != nil || len(kept) != 0 {
			t.Errorf("PINs kept for an employee's own Mac: %+v, %v", kept, err)
		}
	})
}
