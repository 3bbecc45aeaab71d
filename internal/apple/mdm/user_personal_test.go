package mdm_test

import (
	"bytes"
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPersonalDevicesAccountsNotIndexed: which local accounts an
// employee's own Mac has is not the organisation's to ask. Steward keeps
// no account index for the users of a personally owned device (personal
// or User Enrollment), and a lookup there is refused, saying why, and
// writes nothing: no audit entry, no access record. An organisation's Mac
// keeps its users' account indexes.
func TestPersonalDevicesAccountsNotIndexed(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	f.publish(privacy.UserEnrolled)
	f.publish(privacy.Corporate)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	own, ownDev := f.enrolledWith(ts, privacy.Personal, erika, mac)
	userEnrolled, userEnrolledDev := f.enrolledWith(ts, privacy.UserEnrolled, f.subject("max@acme.test"), mac)
	work, workDev := f.enrolledWith(ts, privacy.Corporate, "", mac)
	for _, c := range []struct {
		dev     store.Device
		user    *sim.User
		account string
		indexed bool
	}{
		{ownDev, own.NewUser("erika@acme.test", "Erika Mustermann"), "erika@acme.test", false},
		{userEnrolledDev, userEnrolled.NewUser("max", "Max Mustermann"), "max", false},
		{workDev, work.NewUser("erika@acme.test", "Erika Mustermann"), "erika@acme.test", true},
	} {
		if err := c.user.LogIn(f.ctx); err != nil {
			t.Fatal(err)
		}
		ucs, err := f.st.Read().AppleUserChannels().List(f.ctx, f.tenant, c.dev.ID)
		if err != nil || len(ucs) != 1 || ucs[0].UserIndex == nil {
			t.Fatalf("%s device's user channels: %+v, %v", c.dev.Ownership, ucs, err)
		}
		if indexed := ucs[0].AccountIndex != nil; indexed != c.indexed {
			t.Errorf("%s device: its user's account indexed %v; want %v", c.dev.Ownership, indexed, c.indexed)
		}
		if c.indexed {
			continue
		}
		before := storetest.AllValues(t, f.st)
		found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, c.dev.ID, c.account, lookupReason, admin)
		if !apperr.IsKind(err, apperr.KindConflict) || found != nil {
			t.Errorf("looking up an account on a %s device: %+v, %v; want a conflict", c.dev.Ownership, found, err)
		}
		if !bytes.Equal(storetest.AllValues(t, f.st), before) {
			t.Errorf("a refused lookup on a %s device changed the database", c.dev.Ownership)
		}
	}
	if recs, err := f.priv.AccessRecord(f.ctx, f.tenant, erika, store.Page{}); err != nil || len(recs) != 0 {
		t.Errorf("erika's access record after the refused lookups: %+v, %v; want none", recs, err)
	}
	if found, err := f.svc.LookupUserChannel(f.ctx, f.tenant, workDev.ID, "erika@acme.test", lookupReason, admin); err != nil || len(found) != 1 {
		t.Errorf("looking her account up on the organisation's Mac: %+v, %v; want her channel", found, err)
	}
}
