package server

import (
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestStaleDevices: a device silent for longer than the tenant allows is
// flagged, then retired with its personal data erased; a device still
// checking in is left alone, and so is a Mac silent since a lock whose PIN
// Steward keeps (it waits for someone to enter the PIN), acknowledged or
// fetched without its answer arriving, but not one that checked in after
// its lock.
func TestStaleDevices(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		f.must(200, f.owner, "PUT", f.path("/device-settings"), device.Settings{StaleAfterDays: 10, RetireStaleAfterDays: 7,
			BulkApprovalThreshold: 25, ApprovalHours: 72, ComplianceHistoryDays: 365}, nil)
		if r := f.do(f.owner, "PUT", f.path("/device-settings"), device.Settings{StaleAfterDays: 1, RetireStaleAfterDays: 1,
			BulkApprovalThreshold: 25, ApprovalHours: 72, ComplianceHistoryDays: 365}); r.status != 400 {
			t.Errorf("retiring devices after a day offline: %d", r.status)
		}
		_, silentID := f.enrol("corporate", "", "", nil)
		_, activeID := f.enrol("corporate", "", "", nil)
		_, returnerID := f.enrol("corporate", "", "", nil)
		lockedMac, lockedID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.IntelMac = true })
		unlockedMac, unlockedID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.IntelMac = true })
		fetchedMac, fetchedID := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.IntelMac = true })
		for _, m := range []struct {
			sim *sim.Device
			id  string
		}{{lockedMac, lockedID}, {unlockedMac, unlockedID}} {
			f.must(201, f.owner, "POST", f.path("/devices/"+m.id+"/actions"),
				api.DeviceActionRequest{Action: actions.Lock, Reason: "left on the night train", Options: actions.Options{PIN: "482913"}}, nil)
			f.poll(m.sim)
			if m.sim.LockPIN != "482913" {
				t.Fatalf("the Mac was not locked: %q", m.sim.LockPIN)
			}
		}
		// This Mac fetched its lock and locked; its answer never arrived.
		f.must(201, f.owner, "POST", f.path("/devices/"+fetchedID+"/actions"),
			api.DeviceActionRequest{Action: actions.Lock, Reason: "left on the night train", Options: actions.Options{PIN: "864200"}}, nil)
		if _, err := fetchedMac.Send(f.ctx, map[string]any{"Status": "Idle", "UDID": fetchedMac.UDID}); err != nil {
			t.Fatal(err)
		}
		// A ladder does not lock the Mac again: it is at its lock already.
		lockedDevice, err := st.Read().Devices().Get(f.ctx, f.tenant, lockedID)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			return f.app.Actions.Automatic(f.ctx, q, lockedDevice, actions.Lock, "compliance policy \"Baseline\": not seen for 10 days", actions.Rule{}, iam.SystemActor)
		}); err != nil {
			t.Fatal(err)
		}
		var lockedActions api.List[api.ActionView]
		if f.must(200, f.owner, "GET", f.path("/devices/"+lockedID+"/actions"), nil, &lockedActions); len(lockedActions.Items) != 1 {
			t.Errorf("%d actions on the locked Mac after a ladder's lock, want the admin's lock alone", len(lockedActions.Items))
		}
		if skipped, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.action.lock.skipped"}); err != nil ||
			len(skipped) != 1 || skipped[0].TargetID != lockedID || !strings.Contains(string(skipped[0].Details), lockedActions.Items[0].ID) {
			t.Errorf("the ladder's skipped lock on the audit record: %+v, %v", skipped, err)
		}
		// A second lock from the help desk waits in its queue for ever.
		f.must(201, f.owner, "POST", f.path("/devices/"+lockedID+"/actions"),
			api.DeviceActionRequest{Action: actions.Lock, Reason: "sent again from the help desk", Options: actions.Options{PIN: "135790"}}, nil)
		now := time.Now()
		// Someone entered the PIN at the second Mac; it checked in once more.
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			return q.Devices().Touch(f.ctx, f.tenant, unlockedID, now.Add(time.Hour))
		}); err != nil {
			t.Fatal(err)
		}
		at := func(days int) {
			f.app.Actions.SetClock(func() time.Time { return now.Add(time.Duration(days) * 24 * time.Hour) })
		}

		at(5)
		if res, err := f.app.Actions.SweepStale(f.ctx); err != nil || res.Flagged+res.Retired != 0 {
			t.Fatalf("after 5 days: %+v %v", res, err)
		}
		at(11)
		// The active device checked in meanwhile (its last-seen time moves).
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			return q.Devices().Touch(f.ctx, f.tenant, activeID, now.Add(10*24*time.Hour))
		}); err != nil {
			t.Fatal(err)
		}
		if res, err := f.app.Actions.SweepStale(f.ctx); err != nil || res.Flagged != 5 || res.Retired != 0 {
			t.Fatalf("after 11 days: %+v %v", res, err)
		}
		// The returner comes back after being flagged: the flag goes.
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			return q.Devices().Touch(f.ctx, f.tenant, returnerID, now.Add(12*24*time.Hour))
		}); err != nil {
			t.Fatal(err)
		}
		if d := f.device(f.owner, silentID); d.StaleSince == nil {
			t.Errorf("silent device not flagged: %+v", d)
		}
		if got := ids(f.devices(f.owner, "last_seen_before=10d")); len(got) != 0 {
			// last_seen_before is relative to the real clock: nothing is 10 days silent yet.
			t.Errorf("last_seen_before=10d: %v", got)
		}
		at(19)
		if res, err := f.app.Actions.SweepStale(f.ctx); err != nil || res.Retired != 2 || res.Held != 2 {
			t.Fatalf("after 19 days: %+v %v", res, err)
		}
		at(20)
		if res, err := f.app.Actions.SweepStale(f.ctx); err != nil || res.Retired != 0 || res.Held != 2 {
			t.Fatalf("after 20 days: %+v %v", res, err)
		}
		held, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.stale.retire_held"})
		if err != nil || len(held) != 2 || held[0].TargetID == held[1].TargetID {
			t.Errorf("the holds on the audit record (once each): %+v, %v", held, err)
		}
		for _, e := range held {
			if e.TargetID != lockedID && e.TargetID != fetchedID {
				t.Errorf("a hold of another device: %+v", e)
			}
		}
		for _, id := range []string{silentID, unlockedID} {
			if d := f.device(f.owner, id); d.State != store.DeviceRetired {
				t.Errorf("silent device after the retire period: %q", d.State)
			}
		}
		for _, id := range []string{lockedID, fetchedID} {
			if d := f.device(f.owner, id); d.State != store.DeviceEnrolled || d.StaleSince == nil {
				t.Errorf("the Mac silent since its lock: %q, stale since %v; want enrolled and flagged", d.State, d.StaleSince)
			}
		}
		for _, id := range []string{activeID, returnerID} {
			if d := f.device(f.owner, id); d.State != store.DeviceEnrolled || d.StaleSince != nil {
				t.Errorf("device still checking in: %+v", d)
			}
		}
	})
}

// TestStaleSweepPagesPastHeldMacs: more held Macs than a page of the sweep
// do not hide the devices behind them, which it still retires.
func TestStaleSweepPagesPastHeldMacs(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		f.must(200, f.owner, "PUT", f.path("/device-settings"), device.Settings{StaleAfterDays: 10, RetireStaleAfterDays: 7,
			BulkApprovalThreshold: 25, ApprovalHours: 72, ComplianceHistoryDays: 365}, nil)
		now := time.Now().UTC().Truncate(time.Microsecond)
		lockedAt := now.Add(-30 * 24 * time.Hour)
		const held = 501 // a page is 500
		var macs []store.Device
		var locks []store.DeviceAction
		for i := range held {
			// Each silent since its lock's acknowledgement; all first in
			// the sweep's order.
			seen := lockedAt.Add(time.Duration(i) * time.Microsecond)
			d := store.Device{ID: store.NewID(), TenantID: f.tenant, Ownership: "corporate", Platform: "macos", State: store.DeviceEnrolled,
				EnrolledAt: seen, LastSeenAt: seen, CreatedAt: seen, UpdatedAt: seen}
			macs = append(macs, d)
			locks = append(locks, store.DeviceAction{ID: store.NewID(), TenantID: f.tenant, BatchID: store.NewID(), DeviceID: d.ID,
				Action: string(actions.Lock), Reason: "lost", RequestedBy: "admin", State: store.ActionDone, SealedPIN: []byte("sealed"),
				CreatedAt: seen, UpdatedAt: seen})
		}
		phone := store.Device{ID: store.NewID(), TenantID: f.tenant, Ownership: "corporate", Platform: "ios", State: store.DeviceEnrolled,
			EnrolledAt: lockedAt, LastSeenAt: lockedAt.Add(time.Hour), CreatedAt: lockedAt, UpdatedAt: lockedAt}
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			for _, d := range append(macs, phone) {
				if err := q.Devices().Create(f.ctx, d); err != nil {
					return err
				}
			}
			return q.Actions().Create(f.ctx, locks)
		}); err != nil {
			t.Fatal(err)
		}
		f.app.Actions.SetClock(func() time.Time { return now })
		if res, err := f.app.Actions.SweepStale(f.ctx); err != nil || res.Flagged != held+1 {
			t.Fatalf("the first sweep: %+v, %v; want %d flagged", res, err, held+1)
		}
		f.app.Actions.SetClock(func() time.Time { return now.Add(8 * 24 * time.Hour) })
		if res, err := f.app.Actions.SweepStale(f.ctx); err != nil || res.Held != held || res.Retired != 1 {
			t.Fatalf("the sweep a week on: %+v, %v; want %d held and the phone retired", res, err, held)
		}
		if d, err := st.Read().Devices().Get(f.ctx, f.tenant, phone.ID); err != nil || d.State != store.DeviceRetired {
			t.Errorf("the phone behind the held Macs: %+v, %v", d, err)
		}
	})
}
