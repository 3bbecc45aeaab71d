package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// testApprovalSecrets: Settled finds, in every tenant, the approvals of a
// kind that can no longer be carried out (decided, or expired at or before
// the instant asked about), and ForgetSecrets rewrites only such an
// approval's payload, leaving the rest of its record; a live one's payload,
// which its decision still needs, cannot be touched.
func testApprovalSecrets(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	now := micro(at.Add(100 * time.Hour))
	mk := func(tenantID, kind, state string, expires time.Time) store.Approval {
		a := store.Approval{ID: store.NewID(), TenantID: tenantID, Kind: kind, Payload: []byte(`{"batch_id":"b","sealed_options":"c2VjcmV0"}`),
			Reason: "stolen", RequestedBy: "admin-1", State: state, CreatedAt: micro(at), ExpiresAt: micro(expires)}
		if state != "pending" {
			a.DecidedBy, a.DecidedAt = "admin-2", micro(at.Add(time.Hour))
		}
		tx(t, st, func(q store.Queries) error { return q.Approvals().Create(ctx, a) })
		return a
	}
	live := mk(tn.ID, "device_action", "pending", now.Add(time.Microsecond))
	expiresNow := mk(tn.ID, "device_action", "pending", now)
	lapsed := mk(other.ID, "device_action", "pending", at.Add(72*time.Hour))
	approved := mk(tn.ID, "device_action", "approved", now.Add(time.Hour))
	rejected := mk(other.ID, "device_action", "rejected", now.Add(time.Hour))
	mk(tn.ID, "privacy.policy", "pending", at) // another kind

	r := st.Read().Approvals()
	got, err := r.Settled(ctx, "device_action", now, "", 100)
	must(t, err)
	want := map[string]store.Approval{expiresNow.ID: expiresNow, lapsed.ID: lapsed, approved.ID: approved, rejected.ID: rejected}
	if len(got) != len(want) {
		t.Fatalf("Settled = %d approvals, want %d: %+v", len(got), len(want), got)
	}
	for i, a := range got {
		if !reflect.DeepEqual(a, want[a.ID]) || (i > 0 && got[i-1].ID >= a.ID) {
			t.Fatalf("Settled[%d] = %+v, want one of %+v in ID order", i, a, want)
		}
	}
	if page, err := r.Settled(ctx, "device_action", now, got[1].ID, 1); err != nil || len(page) != 1 || page[0].ID != got[2].ID {
		t.Fatalf("Settled after %s, limit 1 = %+v, %v; want %s", got[1].ID, page, err, got[2].ID)
	}

	forget := func(tenantID, id string) error {
		return st.Tx(ctx, func(q store.Queries) error {
			return q.Approvals().ForgetSecrets(ctx, tenantID, id, []byte(`{"batch_id":"b"}`), now)
		})
	}
	wantErr(t, forget(tn.ID, live.ID), store.ErrConflict, "ForgetSecrets of an approval still waiting")
	wantErr(t, forget(tn.ID, lapsed.ID), store.ErrNotFound, "ForgetSecrets through another tenant")
	wantErr(t, forget(tn.ID, store.NewID()), store.ErrNotFound, "ForgetSecrets of a missing approval")
	for _, a := range []store.Approval{expiresNow, lapsed, approved, rejected} {
		must(t, forget(a.TenantID, a.ID))
		a.Payload = []byte(`{"batch_id":"b"}`)
		if stored, err := r.Get(ctx, a.TenantID, a.ID); err != nil || !reflect.DeepEqual(stored, a) {
			t.Errorf("after ForgetSecrets: %+v, %v; want %+v", stored, err, a)
		}
	}
	if stored, err := r.Get(ctx, tn.ID, live.ID); err != nil || !reflect.DeepEqual(stored, live) {
		t.Errorf("the approval still waiting: %+v, %v; want it unchanged", stored, err)
	}
}
