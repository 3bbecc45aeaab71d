package actions

import (
	"context"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestSweepFlagsOnlyWhatIsStillStale: the sweep's list is read before its
// writes; a device that checked in since is not flagged on the strength of
// that list, and one still silent is.
func TestSweepFlagsOnlyWhatIsStillStale(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)
		tenant := store.Tenant{ID: store.NewID(), Kind: store.TenantProvider, Name: "Sweep", Slug: "sweep-" + store.NewID()[30:],
			CreatedAt: now, UpdatedAt: now}
		old := now.Add(-20 * 24 * time.Hour)
		listed := func() store.Device {
			return store.Device{ID: store.NewID(), TenantID: tenant.ID, Ownership: "corporate", Platform: "ios",
				State: store.DeviceEnrolled, EnrolledAt: old, LastSeenAt: old, CreatedAt: old, UpdatedAt: old}
		}
		returned, silent := listed(), listed()
		if err := st.Tx(ctx, func(q store.Queries) error {
			if err := q.Tenants().Create(ctx, tenant); err != nil {
				return err
			}
			for _, d := range []store.Device{returned, silent} {
				if err := q.Devices().Create(ctx, d); err != nil {
					return err
				}
			}
			return q.Devices().Touch(ctx, tenant.ID, returned.ID, now) // after the sweep listed it
		}); err != nil {
			t.Fatal(err)
		}
		s := &Service{st: st, now: func() time.Time { return now }}
		settings := device.Settings{StaleAfterDays: 10}
		cutoff := now.Add(-10 * 24 * time.Hour)
		for _, c := range []struct {
			d    store.Device
			want string
		}{{returned, ""}, {silent, "flagged"}} {
			done, err := s.sweepOne(ctx, c.d, settings, cutoff, now)
			if err != nil || done != c.want {
				t.Errorf("sweeping device %s: %q, %v; want %q", c.d.ID, done, err, c.want)
			}
			got, err := st.Read().Devices().Get(ctx, tenant.ID, c.d.ID)
			if err != nil || got.StaleSince.IsZero() != (c.want == "") {
				t.Errorf("device %s after the sweep: stale since %v, %v", c.d.ID, got.StaleSince, err)
			}
		}
	})
}
