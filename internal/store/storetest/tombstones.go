package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

func testTombstones(t *testing.T, st store.Store) {
	ctx := context.Background()
	root := newTenant(t, st, "")
	link := store.Tombstone{Kind: store.TombstoneEnrolmentRevoked, SubjectID: store.NewID(), ScopeID: root.ID,
		DecidedAt: micro(at), Until: micro(at.Add(24 * time.Hour))}
	customer := store.Tombstone{Kind: store.TombstoneTenantDeleted, SubjectID: store.NewID(), ScopeID: root.ID, DecidedAt: micro(at)}
	tx(t, st, func(q store.Queries) error {
		for _, s := range []store.Tombstone{link, customer} {
			if err := q.Tombstones().Put(ctx, s); err != nil {
				return err
			}
		}
		// Recorded again (a retried revocation): the first decision stays.
		again := link
		again.DecidedAt = micro(at.Add(time.Hour))
		return q.Tombstones().Put(ctx, again)
	})
	list := func(kind string, now time.Time) []store.Tombstone {
		t.Helper()
		got, err := st.Read().Tombstones().List(ctx, kind, now, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := list(store.TombstoneEnrolmentRevoked, at); len(got) != 1 || got[0] != link {
		t.Fatalf("revoked links = %+v, want %+v", got, link)
	}
	if got := list(store.TombstoneTenantDeleted, at.Add(100*365*24*time.Hour)); len(got) != 1 || got[0] != customer {
		t.Fatalf("deleted tenants long after = %+v, want %+v kept for good", got, customer)
	}
	if got := list(store.TombstoneEnrolmentRevoked, at.Add(25*time.Hour)); len(got) != 0 {
		t.Fatalf("a link tombstone past its end is listed: %+v", got)
	}

	var purged int
	tx(t, st, func(q store.Queries) (err error) {
		purged, err = q.Tombstones().PurgeEnded(ctx, at.Add(23*time.Hour))
		return err
	})
	if purged != 0 {
		t.Fatalf("purged %d tombstones still in force", purged)
	}
	tx(t, st, func(q store.Queries) (err error) {
		purged, err = q.Tombstones().PurgeEnded(ctx, at.Add(25*time.Hour))
		return err
	})
	if purged != 1 || len(list(store.TombstoneEnrolmentRevoked, at)) != 0 || len(list(store.TombstoneTenantDeleted, at)) != 1 {
		t.Fatalf("purging after the link's end removed %d; the tenant's must stay", purged)
	}

	// Deleting a tenant empties every table with a tenant_id column; its
	// tombstone, scoped elsewhere, must outlive that.
	gone := newTenant(t, st, root.ID)
	tx(t, st, func(q store.Queries) error {
		return q.Tombstones().Put(ctx, store.Tombstone{Kind: store.TombstoneTenantDeleted, SubjectID: gone.ID, ScopeID: root.ID, DecidedAt: micro(at)})
	})
	tx(t, st, func(q store.Queries) error { return q.Tenants().Delete(ctx, gone.ID) })
	if got := list(store.TombstoneTenantDeleted, at); len(got) != 2 {
		t.Fatalf("tombstones after the tenant's deletion = %+v, want both", got)
	}
}

// testTenantDeleteAgain: a tenant a restored backup brought back goes again
// with the admins and managed devices the backup holds of it, but not
// before its customer tenants.
func testTenantDeleteAgain(t *testing.T, st store.Store) {
	ctx := context.Background()
	root := newTenant(t, st, "")
	back := newTenant(t, st, root.ID)
	customer := newTenant(t, st, back.ID)
	d := newDevice(t, st, back.ID, newSubject(t, st, back.ID, []byte("email")).ID, "corporate")
	newAdmin(t, st, back.ID)
	appendEntries(t, st, back.ID, 1, nil)

	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Tenants().DeleteAgain(ctx, back.ID) }),
		store.ErrConflict, "DeleteAgain with a customer tenant")
	tx(t, st, func(q store.Queries) error { return q.Tenants().DeleteAgain(ctx, customer.ID) })
	tx(t, st, func(q store.Queries) error { return q.Tenants().DeleteAgain(ctx, back.ID) })

	r := st.Read()
	_, err := r.Tenants().Get(ctx, back.ID)
	wantErr(t, err, store.ErrNotFound, "a tenant deleted again")
	_, err = r.Devices().Get(ctx, back.ID, d.ID)
	wantErr(t, err, store.ErrNotFound, "the enrolled device of a tenant deleted again")
	if entries, err := r.Audit().List(ctx, back.ID, store.AuditFilter{}); err != nil || len(entries) != 1 {
		t.Fatalf("audit log of a tenant deleted again = %d entries, %v; want it kept", len(entries), err)
	}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Tenants().DeleteAgain(ctx, back.ID) }),
		store.ErrNotFound, "DeleteAgain of a tenant gone")
}
