package privacy_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPurgerRemovesFinishedRemoteActions: a remote action goes a year
// after it finished, audited with the other categories; one finished
// since, one waiting for its approval, one queued and the lock whose Find
// My PIN a Mac took stay.
func TestPurgerRemovesFinishedRemoteActions(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		phone := f.device(f.person("erika@acme.test").ID, privacy.Corporate)
		mac, err := f.svc.RegisterDevice(f.ctx, f.tenant, privacy.DeviceInput{Ownership: string(privacy.Corporate), Platform: "macos"}, admin)
		if err != nil {
			t.Fatal(err)
		}
		finished := f.now
		action := func(d store.Device, kind, state string, updated time.Time) store.DeviceAction {
			return store.DeviceAction{ID: store.NewID(), TenantID: f.tenant, BatchID: store.NewID(), DeviceID: d.ID, Action: kind,
				Reason: "lost on the train", RequestedBy: "admin:" + admin.ID, State: state, CreatedAt: finished, UpdatedAt: updated}
		}
		approval := store.Approval{ID: store.NewID(), TenantID: f.tenant, Kind: "device_action", Payload: []byte(`{}`),
			Reason: "wipe the lost phone", RequestedBy: admin.ID, State: "pending", CreatedAt: finished,
			ExpiresAt: finished.Add(400 * 24 * time.Hour)}
		old := action(phone, "restart", store.ActionDone, finished)
		newer := action(phone, "lock", store.ActionFailed, finished.Add(300*24*time.Hour))
		waiting := action(phone, "wipe", store.ActionAwaitingApproval, finished)
		waiting.ApprovalID = approval.ID
		queued := action(phone, "lock", store.ActionQueued, finished)
		held := action(mac, "lock", store.ActionDone, finished)
		held.SealedPIN = []byte("sealed PIN")
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			if err := q.Approvals().Create(f.ctx, approval); err != nil {
				return err
			}
			return q.Actions().Create(f.ctx, []store.DeviceAction{old, newer, waiting, queued, held})
		}); err != nil {
			t.Fatal(err)
		}

		p := &privacy.Purger{Service: f.svc, Batch: 2}
		f.now = finished.Add(privacy.RemoteActionRetention - time.Minute)
		if res, err := p.RunOnce(f.ctx); err != nil || res.ByKey[f.tenant+"/remote_actions"] != 0 {
			t.Fatalf("a minute before the year is out: %+v, %v; want nothing purged", res, err)
		}
		f.now = finished.Add(privacy.RemoteActionRetention + time.Minute)
		res, err := p.RunOnce(f.ctx)
		if err != nil || res.ByKey[f.tenant+"/remote_actions"] != 1 {
			t.Fatalf("a year after it finished: %+v, %v; want the restart purged", res, err)
		}
		if _, err := st.Read().Actions().Get(f.ctx, f.tenant, old.ID); err == nil {
			t.Error("the restart survived its retention")
		}
		for _, a := range []store.DeviceAction{newer, waiting, queued, held} {
			if _, err := st.Read().Actions().Get(f.ctx, f.tenant, a.ID); err != nil {
				t.Errorf("the %s %s was purged: %v", a.State, a.Action, err)
			}
		}
		entries, err := st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "privacy.retention.purge"})
		if err != nil || len(entries) != 1 {
			t.Fatalf("purge audit entries: %d, %v; want one", len(entries), err)
		}
		var details map[string]map[string]int
		if err := json.Unmarshal(entries[0].Details, &details); err != nil || details["removed"]["remote_actions"] != 1 {
			t.Errorf("purge audit details: %s, %v", entries[0].Details, err)
		}
	})
}

// TestLocationRetentionCountsFromTheFix: a location is kept for its period
// from when the device determined it, not from when Steward received it:
// a fix older than the period is not stored, one stored goes when its
// period from the fix is out, and one superseded is not kept in history
// past that either. A fix dated after its receipt counts from the receipt.
func TestLocationRetentionCountsFromTheFix(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		d := f.device(f.person("erika@acme.test").ID, privacy.Corporate)
		start := f.now
		report := func(lat float64, fixed, received time.Time) privacy.Report {
			return privacy.Report{TenantID: f.tenant, DeviceID: d.ID, Source: "test/DeviceLocation", At: received,
				Values: []privacy.Observation{{Field: "location.coordinates", ObservedAt: fixed,
					Value: map[string]any{"lat": lat, "lon": 13.404954, "fixed_at": fixed}}}}
		}
		current := func() []store.InventoryValue {
			t.Helper()
			vs, err := st.Read().Inventory().CurrentOf(f.ctx, f.tenant, d.ID, []string{"location.coordinates"})
			if err != nil {
				t.Fatal(err)
			}
			return vs
		}
		purge := func(at time.Time) int {
			t.Helper()
			f.now = at
			res, err := (&privacy.Purger{Service: f.svc}).RunOnce(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			return res.ByKey[f.tenant+"/location"]
		}
		week := 7 * 24 * time.Hour

		// A fix two days old is kept five more days; it was collected now.
		fixed := start.Add(-48 * time.Hour)
		if got := f.ingest(report(52.1, fixed, start)); got.Stored != 1 {
			t.Fatalf("a fix two days old: %+v, want it stored", got)
		}
		first := current()
		if len(first) != 1 || !first[0].CollectedAt.Equal(start) || !first[0].ExpiresAt.Equal(fixed.Add(week)) {
			t.Fatalf("a fix two days old: %+v; want it collected %v and kept until a week after its fix, %v", first, start, fixed.Add(week))
		}

		// One eight days old is not stored at all; the last one stays.
		if got := f.ingest(report(52.2, start.Add(-8*24*time.Hour), start.Add(time.Minute))); got.Stored != 0 || got.Dropped != 1 {
			t.Fatalf("a fix eight days old: %+v, want it dropped", got)
		}
		if got := current(); len(got) != 1 || string(got[0].Ciphertext) != string(first[0].Ciphertext) {
			t.Errorf("a fix eight days old replaced the one stored: %+v", got)
		}

		// A fix dated after its receipt counts from the receipt; the one it
		// supersedes keeps its own expiry in history.
		received := start.Add(2 * time.Minute)
		if got := f.ingest(report(52.3, received.Add(time.Hour), received)); got.Stored != 1 {
			t.Fatalf("a fix from the future: %+v, want it stored", got)
		}
		if got := current(); len(got) != 1 || !got[0].ExpiresAt.Equal(received.Add(week)) {
			t.Errorf("a fix from the future: %+v; want it kept a week from its receipt, until %v", got, received.Add(week))
		}
		hist, err := st.Read().Inventory().History(f.ctx, f.tenant, d.ID, 0)
		if err != nil || len(hist) != 1 || !hist[0].ExpiresAt.Equal(first[0].ExpiresAt) {
			t.Fatalf("the superseded fix in history: %+v, %v; want it to expire at %v, as it would have", hist, err, first[0].ExpiresAt)
		}

		// A fix a day old, received now, goes six days from now.
		received = start.Add(3 * time.Minute)
		if got := f.ingest(report(52.4, start.Add(-24*time.Hour), received)); got.Stored != 1 {
			t.Fatalf("a fix a day old: %+v, want it stored", got)
		}
		if n := purge(fixed.Add(week).Add(time.Minute)); n != 1 {
			t.Errorf("a week after the first fix: %d locations purged, want its history row", n)
		}
		if n := purge(start.Add(6 * 24 * time.Hour).Add(time.Minute)); n != 1 || len(current()) != 0 {
			t.Errorf("a week after the last fix: %d locations purged, %d kept; want it purged", n, len(current()))
		}
	})
}
