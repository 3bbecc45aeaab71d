package actions

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestKeptPINsFollowTheMasterKey: a master-key rotation re-seals the kept
// Find My PINs and the options of an action awaiting approval, which then
// open under the new key alone; an update of the action read before the
// rotation does not put the old sealing back, and a PIN written while the
// rotation runs is not overwritten.
func TestKeptPINsFollowTheMasterKey(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		key := func() []byte {
			k := make([]byte, secrets.KeySize)
			_, _ = rand.Read(k)
			return k
		}
		oldKey, newKey := key(), key()
		old, _ := secrets.NewSealer(oldKey)
		tenant, now := store.NewID(), time.Now().UTC().Truncate(time.Microsecond)
		a := store.DeviceAction{ID: store.NewID(), TenantID: tenant, BatchID: store.NewID(), DeviceID: store.NewID(), Action: string(Lock),
			Reason: "left on a train", RequestedBy: "admin:1", State: store.ActionQueued, CreatedAt: now, UpdatedAt: now}
		sealed, err := old.Seal([]byte("482913"), pinAD(tenant, a.ID))
		if err != nil {
			t.Fatal(err)
		}
		a.SealedPIN = sealed
		plain := a
		plain.ID, plain.SealedPIN = store.NewID(), nil // an action without a PIN is left alone
		approval := store.Approval{ID: store.NewID(), TenantID: tenant, Kind: ApprovalKind, Reason: "wipe the lost Mac",
			RequestedBy: "admin:1", State: "pending", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		options, err := old.Seal([]byte(`{"pin":"135790"}`), optionsAD(approval.ID))
		if err != nil {
			t.Fatal(err)
		}
		approval.Payload, _ = json.Marshal(approvalPayload{BatchID: a.BatchID, Action: Wipe, Devices: 1, Sealed: options})
		if err := st.Tx(ctx, func(q store.Queries) error {
			if err := q.Approvals().Create(ctx, approval); err != nil {
				return err
			}
			return q.Actions().Create(ctx, []store.DeviceAction{a, plain})
		}); err != nil {
			t.Fatal(err)
		}

		ring, err := secrets.NewKeyring(newKey, oldKey)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := store.RunReseal(ctx, st, ResealJobs(ring), store.ResealPageSize, nil); err != nil || n != 2 {
			t.Fatalf("ResealJobs = %d, %v; want the PIN and the approval's options", n, err)
		}
		// A second run finds nothing left to do.
		if n, err := store.RunReseal(ctx, st, ResealJobs(ring), store.ResealPageSize, nil); err != nil || n != 0 {
			t.Fatalf("ResealJobs again = %d, %v; want nothing", n, err)
		}
		got, err := st.Read().Actions().Get(ctx, tenant, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		current, _ := secrets.NewSealer(newKey)
		if pin, err := current.Open(got.SealedPIN, pinAD(tenant, a.ID)); err != nil || string(pin) != "482913" {
			t.Errorf("the PIN under the new key alone: %q, %v", pin, err)
		}
		if other, _ := st.Read().Actions().Get(ctx, tenant, plain.ID); other.SealedPIN != nil {
			t.Errorf("an action without a PIN got one: %x", other.SealedPIN)
		}
		waiting, err := st.Read().Approvals().Get(ctx, tenant, approval.ID)
		if err != nil {
			t.Fatal(err)
		}
		var p approvalPayload
		if err := json.Unmarshal(waiting.Payload, &p); err != nil || p.BatchID != a.BatchID || p.Action != Wipe {
			t.Fatalf("the approval's payload after the rotation: %+v, %v", p, err)
		}
		if opts, err := current.Open(p.Sealed, optionsAD(approval.ID)); err != nil || string(opts) != `{"pin":"135790"}` {
			t.Errorf("the approval's options under the new key alone: %q, %v", opts, err)
		}

		// A node that read the action before the rotation finishes it: the
		// PIN stays the re-sealed one, and a stale reseal changes nothing.
		stale := a
		stale.State, stale.UpdatedAt = store.ActionDone, now.Add(time.Minute)
		if err := st.Tx(ctx, func(q store.Queries) error { return q.Actions().Update(ctx, stale) }); err != nil {
			t.Fatal(err)
		}
		after, _ := st.Read().Actions().Get(ctx, tenant, a.ID)
		if pin, err := current.Open(after.SealedPIN, pinAD(tenant, a.ID)); err != nil || string(pin) != "482913" || after.State != store.ActionDone {
			t.Errorf("the action after a stale update: state %s, PIN %q (%v)", after.State, pin, err)
		}

		// A PIN written between a rotation's read and its write wins.
		var page store.ResealPage
		if err := st.Tx(ctx, func(q store.Queries) error {
			page, err = q.Sealed().Reseal(ctx, store.SealedActionPINs, "", store.ResealPageSize, func([]byte) bool { return false },
				func(r store.SealedRow) ([]byte, error) {
					return []byte("resealed"), q.Actions().KeepPIN(ctx, tenant, r.ID, []byte("kept meanwhile"))
				})
			return err
		}); err != nil || page.Written != 0 || page.Found != 1 {
			t.Errorf("a reseal racing a write: %+v, %v; want the PIN found and none written", page, err)
		}
		if got, _ := st.Read().Actions().Get(ctx, tenant, a.ID); string(got.SealedPIN) != "kept meanwhile" {
			t.Errorf("the PIN after a reseal lost its race: %q", got.SealedPIN)
		}
	})
}
