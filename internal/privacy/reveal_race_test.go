package privacy_test

import (
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestRevealRacingErasure: on PostgreSQL a reveal reads the device's person
// before an erasure running beside it commits. It waits for the person's
// lock, sees them erased, and writes nothing to a record the erasure has
// already emptied.
func TestRevealRacingErasure(t *testing.T) {
	st := storetest.OpenPostgres(t)
	f := newFixture(t, st)
	erika := f.person("erika@acme.test")
	laptop := f.device(erika.ID, privacy.Corporate)

	err := storetest.ErasingMeanwhile(t, st, f.tenant, erika.ID, func() error {
		_, err := f.svc.Reveal(f.ctx, f.tenant, laptop.ID, privacy.RevealInput{Fields: []string{"device.serial_number"},
			Reason: "warranty case 4711"}, privacy.Viewer{Actor: admin, AdminID: admin.ID})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := st.Read().Access().ListForSubject(f.ctx, f.tenant, erika.ID, store.Page{}); err != nil || len(recs) != 0 {
		t.Errorf("the erased person's access record after the reveal: %+v, %v; want nothing", recs, err)
	}
}
