package privacy_test

import (
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// One admin deprovisions a device that never finished enrolling; an
// enrolled one leaves by an action a second admin approves, and the state
// is judged in the transaction that would deprovision it.
func TestDeprovisionUnenrolled(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		pending, enrolled := f.device(erika.ID, privacy.Corporate), f.device(erika.ID, privacy.Corporate)
		enrolled.State = store.DeviceEnrolled
		if err := st.Tx(f.ctx, func(q store.Queries) error { return q.Devices().Update(f.ctx, enrolled) }); err != nil {
			t.Fatal(err)
		}
		f.ingest(deviceInformation(f, enrolled.ID))
		if _, err := f.svc.DeprovisionUnenrolled(f.ctx, f.tenant, enrolled.ID, "handed back to the supplier", admin); !apperr.IsKind(err, apperr.KindConflict) {
			t.Fatalf("an enrolled device deprovisioned by one admin: %v", err)
		}
		if d, _ := st.Read().Devices().Get(f.ctx, f.tenant, enrolled.ID); d.State != store.DeviceEnrolled || len(f.view(enrolled.ID)) == 0 {
			t.Fatalf("the refused deprovisioning changed the device: %s, %d values", d.State, len(f.view(enrolled.ID)))
		}
		if _, err := f.svc.DeprovisionUnenrolled(f.ctx, f.tenant, pending.ID, "the enrolment was never finished", admin); err != nil {
			t.Fatalf("a pending device: %v", err)
		}
		if d, _ := st.Read().Devices().Get(f.ctx, f.tenant, pending.ID); d.State != store.DeviceDeprovisioned {
			t.Fatalf("the pending device is %s", d.State)
		}
	})
}
