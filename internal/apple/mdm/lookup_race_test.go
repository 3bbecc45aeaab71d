package mdm_test

import (
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestAccountLookupRacingErasure: on PostgreSQL an account lookup reads the
// person before an erasure running beside it commits. It waits for the
// person's lock, sees them erased, and writes nothing to a record the
// erasure has already emptied.
func TestAccountLookupRacingErasure(t *testing.T) {
	f := newFixture(t, storetest.OpenPostgres(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	_, dev := f.enrolled(ts, privacy.Corporate, "")

	err := storetest.ErasingMeanwhile(t, f.st, f.tenant, erika, func() error {
		_, err := f.svc.LookupUserChannel(f.ctx, f.tenant, dev.ID, "erika@acme.test", lookupReason, admin)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := f.st.Read().Access().ListForSubject(f.ctx, f.tenant, erika, store.Page{}); err != nil || len(recs) != 0 {
		t.Errorf("the erased person's access record after the lookup: %+v, %v; want nothing", recs, err)
	}
}
