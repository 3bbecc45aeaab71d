package actions

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestActionRetentionKeepsTheHeldMacsPIN: a company Mac locked two years
// ago and silent since is still at that lock. The retention purge takes
// its other finished actions, an older lock among them, but not the lock
// whose PIN it waits for; when the Mac is then written off, that PIN is
// kept past its record, and outlives the record's purge with its actions.
func TestActionRetentionKeepsTheHeldMacsPIN(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		key := make([]byte, secrets.KeySize)
		_, _ = rand.Read(key)
		sealer, err := secrets.NewSealer(key)
		if err != nil {
			t.Fatal(err)
		}
		locked := time.Now().UTC().Truncate(time.Microsecond).Add(-2 * 365 * 24 * time.Hour)
		now := locked
		clock := func() time.Time { return now }
		tenant := store.Tenant{ID: store.NewID(), Kind: store.TenantProvider, Name: "Held", Slug: "held-" + store.NewID()[30:],
			CreatedAt: locked, UpdatedAt: locked}
		mac := store.Device{ID: store.NewID(), TenantID: tenant.ID, Ownership: "corporate", Platform: "macos",
			State: store.DeviceEnrolled, EnrolledAt: locked, LastSeenAt: locked, CreatedAt: locked, UpdatedAt: locked}
		action := func(kind, pin string, finished time.Time) store.DeviceAction {
			a := store.DeviceAction{ID: store.NewID(), TenantID: tenant.ID, BatchID: store.NewID(), DeviceID: mac.ID, Action: kind,
				Reason: "left on a train", RequestedBy: "admin:1", State: store.ActionDone, CreatedAt: finished, UpdatedAt: finished}
			if pin != "" {
				if a.SealedPIN, err = sealer.Seal([]byte(pin), pinAD(tenant.ID, a.ID)); err != nil {
					t.Fatal(err)
				}
			}
			return a
		}
		earlier := action(string(Lock), "111111", locked.Add(-24*time.Hour)) // unlocked since: the Mac was seen after it
		restart := action(string(Restart), "", locked.Add(-time.Hour))
		held := action(string(Lock), "482913", locked)
		if err := st.Tx(ctx, func(q store.Queries) error {
			if err := q.Tenants().Create(ctx, tenant); err != nil {
				return err
			}
			if err := q.Devices().Create(ctx, mac); err != nil {
				return err
			}
			return q.Actions().Create(ctx, []store.DeviceAction{earlier, restart, held})
		}); err != nil {
			t.Fatal(err)
		}
		signer, err := audit.LoadOrCreateSigner(ctx, st, sealer)
		if err != nil {
			t.Fatal(err)
		}
		priv := privacy.NewService(st, keys.New(sealer), signer, nil)
		priv.SetClock(clock)
		purger := &privacy.Purger{Service: priv}
		s := &Service{st: st, priv: priv, sealer: sealer, now: clock}

		now = locked.Add(2 * 365 * 24 * time.Hour)
		res, err := purger.RunOnce(ctx)
		if err != nil || res.ByKey[tenant.ID+"/remote_actions"] != 2 {
			t.Fatalf("the purge two years on: %+v, %v; want the restart and the earlier lock", res, err)
		}
		if _, err := st.Read().Actions().Get(ctx, tenant.ID, held.ID); err != nil {
			t.Fatalf("the lock the Mac is held at was purged: %v", err)
		}

		// Written off: its departure keeps the PIN it waits for.
		if err := st.Tx(ctx, func(q store.Queries) error {
			if err := s.KeepPINPastDeparture(ctx, q, mac, []byte("serial-index")); err != nil {
				return err
			}
			mac.State, mac.DeprovisionedAt, mac.UpdatedAt = store.DeviceDeprovisioned, now, now
			return q.Devices().Update(ctx, mac)
		}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(privacy.DeprovisionedDeviceRetention + time.Hour)
		if res, err = purger.RunOnce(ctx); err != nil || res.ByKey[tenant.ID+"/deprovisioned_devices"] != 1 {
			t.Fatalf("the purge of the written-off record: %+v, %v", res, err)
		}
		if _, err := st.Read().Actions().Get(ctx, tenant.ID, held.ID); err == nil {
			t.Error("the lock outlived its device's record")
		}
		kept, err := st.Read().DepartedPINs().Get(ctx, tenant.ID, held.ID)
		if err != nil {
			t.Fatalf("the PIN the Mac waits for was not kept past its record: %v", err)
		}
		if pin, err := sealer.Open(kept.SealedPIN, pinAD(tenant.ID, held.ID)); err != nil || string(pin) != "482913" {
			t.Errorf("the kept PIN opens to %q, %v; want the held lock's", pin, err)
		}
	})
}
