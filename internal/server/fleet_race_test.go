package server

import (
	"sync"
	"testing"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestActionsRacingDeparture: remote actions asked for while their device is
// deprovisioned are either refused or settled by the departure (their
// commands cancelled, the actions failed); none stays queued for a device
// that will never answer. On PostgreSQL this needs the device lock that
// carrying out an action and a departure both take.
func TestActionsRacingDeparture(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		actor := iam.Actor{Type: store.ActorAdmin, ID: "admin-race"}
		for range 4 {
			_, id := f.enrol("corporate", "", "", nil)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					<-start
					// Refused when the device left first: that is one of the two outcomes.
					_, _ = f.app.Actions.Submit(f.ctx, f.tenant, actions.Request{Action: actions.Lock, Reason: "reported lost on the train",
						DeviceIDs: []string{id}}, device.Everything(), actor.ID, actor)
				})
			}
			var departure error
			wg.Go(func() {
				<-start
				_, departure = f.app.Privacy.DeprovisionDevice(f.ctx, f.tenant, id, "the laptop was returned", actor)
			})
			close(start)
			wg.Wait()
			if departure != nil {
				t.Fatalf("deprovisioning: %v", departure)
			}
			acts, err := st.Read().Actions().ForDevice(f.ctx, f.tenant, id, store.Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range acts {
				if a.State == store.ActionQueued || a.State == store.ActionAwaitingApproval {
					t.Errorf("an action asked for while its device left is still %s", a.State)
				}
			}
		}
	})
}
