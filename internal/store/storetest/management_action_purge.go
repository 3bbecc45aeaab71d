package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// testActionPurge: finished actions older than the cutoff go, in batches,
// counted per tenant; waiting and queued ones stay, and so do those the
// departed-PIN rule and a leaving device's removals still read.
func testActionPurge(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	mac, phone := managedDevice(t, st, a.ID), managedDevice(t, st, a.ID)
	// A Mac that checked in after its last lock is past it; one seen within
	// a minute of taking it (its last-seen time written first) is not.
	seenAfter := func(d time.Duration) store.Device {
		x := managedDevice(t, st, a.ID)
		x.LastSeenAt = micro(at.Add(d))
		tx(t, st, func(q store.Queries) error { return q.Devices().Update(ctx, x) })
		return x
	}
	unlocked, atTheMinute, pastTheMinute := seenAfter(time.Hour), seenAfter(time.Minute), seenAfter(time.Minute+time.Second)
	leaving := managedDevice(t, st, a.ID)
	leaving.State = store.DeviceLeaving
	tx(t, st, func(q store.Queries) error { return q.Devices().Update(ctx, leaving) })
	foreignDevice := managedDevice(t, st, b.ID)

	cutoff := micro(at.Add(365 * 24 * time.Hour))
	old, recent := micro(at), cutoff.Add(time.Minute)
	// IDs grow with each call: which lock is the newest follows the order
	// below.
	action := func(tenant string, d store.Device, kind, state string, updated time.Time) store.DeviceAction {
		return store.DeviceAction{ID: store.NewID(), TenantID: tenant, BatchID: store.NewID(), DeviceID: d.ID, Action: kind,
			Reason: "lost on the train", RequestedBy: "admin-1", State: state, CreatedAt: old, UpdatedAt: updated}
	}
	withPIN := func(x store.DeviceAction) store.DeviceAction {
		x.SealedPIN = []byte("sealed PIN " + x.ID)
		return x
	}
	awaiting := func(approvalID string) store.DeviceAction {
		x := action(a.ID, phone, "wipe", store.ActionAwaitingApproval, old)
		x.ApprovalID = approvalID
		return x
	}
	lapsed := newApproval(t, st, a.ID) // expired 72 hours after at, long before the cutoff, never decided
	live := store.Approval{ID: store.NewID(), TenantID: a.ID, Kind: "device_action", Payload: []byte(`{}`), Reason: "ticket 42",
		RequestedBy: "admin-1", State: "pending", CreatedAt: old, ExpiresAt: recent.Add(time.Hour)}
	tx(t, st, func(q store.Queries) error { return q.Approvals().Create(ctx, live) })

	purged := []store.DeviceAction{
		action(a.ID, phone, "lock", store.ActionDone, old),
		action(a.ID, phone, "restart", store.ActionFailed, old),
		action(a.ID, phone, "wipe", store.ActionRefused, old),
		action(a.ID, phone, "wipe", store.ActionRejected, old),
		action(a.ID, phone, "wipe", store.ActionExpired, old),
		awaiting(lapsed.ID),
		awaiting("approval-purged-since"),
		// A newer lock whose PIN the Mac took stands for this one.
		withPIN(action(a.ID, mac, "lock", store.ActionDone, old)),
		action(a.ID, leaving, "lock", store.ActionDone, old),   // only its removals count its attempts
		action(a.ID, phone, "retire", store.ActionFailed, old), // a device not leaving counts none
		withPIN(action(a.ID, unlocked, "lock", store.ActionDone, old)),
		withPIN(action(a.ID, pastTheMinute, "lock", store.ActionDone, old)),
	}
	kept := []store.DeviceAction{
		action(a.ID, phone, "lock", store.ActionDone, recent),
		action(a.ID, phone, "lock", store.ActionQueued, old),
		awaiting(live.ID),
		withPIN(action(a.ID, mac, "lock", store.ActionDone, old)),      // the newest lock the Mac took
		withPIN(action(a.ID, mac, "wipe", store.ActionDone, old)),      // the newest erase
		withPIN(action(a.ID, unlocked, "wipe", store.ActionDone, old)), // an erase's, whatever came after
		withPIN(action(a.ID, atTheMinute, "lock", store.ActionDone, old)),
		action(a.ID, leaving, "retire", store.ActionFailed, old),
	}
	keptLock := kept[3]
	purged = append(purged,
		// Newer than the kept lock but never taken: it goes, and the kept
		// one still stands.
		withPIN(action(a.ID, mac, "lock", store.ActionFailed, old)),
		action(b.ID, foreignDevice, "locate", store.ActionDone, old))
	all := append(append([]store.DeviceAction{}, purged...), kept...)
	tx(t, st, func(q store.Queries) error { return q.Actions().Create(ctx, all) })

	byTenant := map[string]int{}
	rounds := 0
	for {
		var counts []store.PurgeCount
		tx(t, st, func(q store.Queries) (err error) {
			counts, err = q.Actions().PurgeFinished(ctx, cutoff, 4)
			return err
		})
		n := 0
		for _, c := range counts {
			if c.Category != "remote_actions" {
				t.Errorf("PurgeFinished counted %+v, want the category remote_actions", c)
			}
			byTenant[c.TenantID] += c.Rows
			n += c.Rows
		}
		if n > 4 {
			t.Fatalf("one PurgeFinished removed %d, more than the limit 4", n)
		}
		if n == 0 {
			break
		}
		if rounds++; rounds > len(all) {
			t.Fatal("PurgeFinished never ran out of rows to remove")
		}
	}
	if want := len(purged) - 1; byTenant[a.ID] != want || byTenant[b.ID] != 1 || len(byTenant) != 2 {
		t.Errorf("PurgeFinished removed %v, want %d of tenant a and 1 of tenant b", byTenant, want)
	}
	r := st.Read().Actions()
	for _, x := range purged {
		if _, err := r.Get(ctx, x.TenantID, x.ID); err == nil {
			t.Errorf("the %s %s %s (PIN %t) survived the purge", x.State, x.Action, x.ID, x.SealedPIN != nil)
		}
	}
	for _, x := range kept {
		if _, err := r.Get(ctx, x.TenantID, x.ID); err != nil {
			t.Errorf("the %s %s %s (PIN %t) was purged: %v", x.State, x.Action, x.ID, x.SealedPIN != nil, err)
		}
	}
	if got, _, err := r.LastPINTaken(ctx, a.ID, mac.ID, "lock"); err != nil || got.ID != keptLock.ID {
		t.Errorf("LastPINTaken after the purge = %s, %v; want the kept lock %s", got.ID, err, keptLock.ID)
	}
	// Later, past the recent one but while the live approval can still be
	// decided: only the recent one goes.
	counts, err := st.Read().Actions().PurgeFinished(ctx, recent.Add(time.Minute), 0)
	if err != nil || len(counts) != 1 || counts[0] != (store.PurgeCount{TenantID: a.ID, Category: "remote_actions", Rows: 1}) {
		t.Errorf("PurgeFinished outside Tx, past the recent action = %+v, %v; want it alone removed", counts, err)
	}
	if _, err := r.Get(ctx, a.ID, kept[0].ID); err == nil {
		t.Errorf("the recent action survived a purge past it")
	}
}
