package storetest

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

func testTenantCRUD(t *testing.T, st store.Store) {
	ctx := context.Background()
	root := newTenant(t, st, "")
	r := st.Read().Tenants()
	got, err := r.Get(ctx, root.ID)
	must(t, err)
	if !reflect.DeepEqual(got, root) {
		t.Fatalf("Get = %+v, want %+v", got, root)
	}
	got, err = r.GetBySlug(ctx, root.Slug)
	must(t, err)
	if got.ID != root.ID {
		t.Fatalf("GetBySlug returned %s, want %s", got.ID, root.ID)
	}
	_, err = r.Get(ctx, store.NewID())
	wantErr(t, err, store.ErrNotFound, "Get missing")
	_, err = r.GetBySlug(ctx, "no-such-slug")
	wantErr(t, err, store.ErrNotFound, "GetBySlug missing")

	dup := store.Tenant{ID: store.NewID(), Kind: store.TenantProvider, Name: "dup", Slug: root.Slug, CreatedAt: at}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Tenants().Create(ctx, dup) }),
		store.ErrConflict, "Create with taken slug")
	orphan := store.Tenant{ID: store.NewID(), ParentID: store.NewID(), Kind: store.TenantCustomer, Name: "o",
		Slug: "orphan", CreatedAt: at}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Tenants().Create(ctx, orphan) }),
		store.ErrNotFound, "Create with missing parent")

	later := at.Add(time.Hour)
	root.Name, root.RequireMFA, root.AllowedCIDRs, root.UpdatedAt = "Renamed", true, []string{"10.0.0.0/8", "::1/128"}, later
	tx(t, st, func(q store.Queries) error { return q.Tenants().Update(ctx, root) })
	got, err = r.Get(ctx, root.ID)
	must(t, err)
	root.UpdatedAt = micro(later)
	if !reflect.DeepEqual(got, root) {
		t.Fatalf("after Update Get = %+v, want %+v", got, root)
	}
	missing := root
	missing.ID = store.NewID()
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Tenants().Update(ctx, missing) }),
		store.ErrNotFound, "Update missing")

	n, err := r.Count(ctx)
	must(t, err)
	if n != 1 {
		t.Fatalf("Count = %d, want 1", n)
	}
	tx(t, st, func(q store.Queries) error { return q.Tenants().Delete(ctx, root.ID) })
	_, err = r.Get(ctx, root.ID)
	wantErr(t, err, store.ErrNotFound, "Get after Delete")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Tenants().Delete(ctx, root.ID) }),
		store.ErrNotFound, "Delete missing")
}

func testTenantHierarchy(t *testing.T, st store.Store) {
	ctx := context.Background()
	root := newTenant(t, st, "")
	var kids []string
	for range 5 {
		kids = append(kids, newTenant(t, st, root.ID).ID)
	}
	grandchild := newTenant(t, st, kids[0])
	r := st.Read().Tenants()

	roots, err := r.ListChildren(ctx, "", store.Page{})
	must(t, err)
	if len(roots) != 1 || roots[0].ID != root.ID {
		t.Fatalf("ListChildren(roots) = %v, want only %s", ids(roots), root.ID)
	}
	// Pages of two walk all five children in ID order.
	var walked []string
	after := ""
	for {
		page, err := r.ListChildren(ctx, root.ID, store.Page{After: after, Limit: 2})
		must(t, err)
		if len(page) > 2 {
			t.Fatalf("page of %d exceeds limit 2", len(page))
		}
		if len(page) == 0 {
			break
		}
		walked = append(walked, ids(page)...)
		after = page[len(page)-1].ID
	}
	if !reflect.DeepEqual(walked, kids) {
		t.Fatalf("paged children = %v, want %v", walked, kids)
	}

	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Tenants().Delete(ctx, root.ID) }),
		store.ErrConflict, "Delete with children")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Tenants().Delete(ctx, kids[0]) }),
		store.ErrConflict, "Delete with grandchild")
	admin := newAdmin(t, st, kids[1])
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Tenants().Delete(ctx, kids[1]) }),
		store.ErrConflict, "Delete with admins")
	tx(t, st, func(q store.Queries) error {
		if err := q.Admins().Delete(ctx, kids[1], admin.ID); err != nil {
			return err
		}
		if err := q.Tenants().Delete(ctx, grandchild.ID); err != nil {
			return err
		}
		return q.Tenants().Delete(ctx, kids[1])
	})
	n, err := r.Count(ctx)
	must(t, err)
	if n != 5 {
		t.Fatalf("Count = %d, want 5", n)
	}
}

func ids(ts []store.Tenant) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

func testTimeRoundTrip(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	// A non-UTC zone and nanoseconds go in; microseconds in UTC come out.
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	a := store.Admin{ID: store.NewID(), TenantID: tn.ID, Email: "Mixed.Case@Example.TEST", PasswordHash: "h",
		LockedUntil: at.In(zone), CreatedAt: at, UpdatedAt: at}
	tx(t, st, func(q store.Queries) error { return q.Admins().Create(ctx, a) })
	got, err := st.Read().Admins().GetByID(ctx, a.ID)
	must(t, err)
	if !got.LockedUntil.Equal(micro(at)) || got.LockedUntil.Location() != time.UTC {
		t.Fatalf("LockedUntil = %v, want %v in UTC", got.LockedUntil, micro(at))
	}
	if !got.LastFailureAt.IsZero() || got.LastFailureAt != (time.Time{}) {
		t.Fatalf("zero LastFailureAt came back as %v", got.LastFailureAt)
	}
	if got.Email != strings.ToLower(a.Email) {
		t.Fatalf("Email = %q, want lower-case", got.Email)
	}
	old := time.Date(1969, 7, 20, 20, 17, 40, 123456000, time.UTC)
	got.PasswordSetAt = old
	tx(t, st, func(q store.Queries) error { return q.Admins().Update(ctx, got) })
	got, err = st.Read().Admins().GetByID(ctx, a.ID)
	must(t, err)
	if !got.PasswordSetAt.Equal(old) {
		t.Fatalf("pre-1970 time = %v, want %v", got.PasswordSetAt, old)
	}
}

// testTenantDeletePurges: deleting a customer takes its data and its key
// vault with it, keeps its audit log, and leaves its neighbours alone.
func testTenantDeletePurges(t *testing.T, st store.Store) {
	ctx := context.Background()
	root := newTenant(t, st, "")
	gone, kept := newTenant(t, st, root.ID), newTenant(t, st, root.ID)
	type holdings struct {
		subject store.Subject
		device  store.Device
	}
	fill := func(tn store.Tenant) holdings {
		s := newSubject(t, st, tn.ID, []byte("email-"+tn.ID))
		d := newDevice(t, st, tn.ID, s.ID, "corporate")
		tx(t, st, func(q store.Queries) error {
			if _, err := q.Keys().CreateKeyset(ctx, store.TenantKeyset{TenantID: tn.ID, AEADKeyset: []byte("aead"),
				IndexKeyset: []byte("index"), MasterKeyID: "master", CreatedAt: micro(at), RotatedAt: micro(at)}); err != nil {
				return err
			}
			return q.Inventory().Put(ctx, []store.InventoryValue{value(d, "device.name", "device_identity", true, 0)}, nil)
		})
		appendEntries(t, st, tn.ID, 2, nil)
		return holdings{s, d}
	}
	g, k := fill(gone), fill(kept)

	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Tenants().Delete(ctx, gone.ID) }),
		store.ErrConflict, "Delete with an enrolled device")
	// Leaving, it still holds the management profile until it answers.
	g.device.State = store.DeviceLeaving
	tx(t, st, func(q store.Queries) error { return q.Devices().Update(ctx, g.device) })
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Tenants().Delete(ctx, gone.ID) }),
		store.ErrConflict, "Delete with a leaving device")
	g.device.State = store.DeviceRetired
	tx(t, st, func(q store.Queries) error { return q.Devices().Update(ctx, g.device) })
	tx(t, st, func(q store.Queries) error { return q.Tenants().Delete(ctx, gone.ID) })

	r := st.Read()
	_, err := r.Devices().Get(ctx, gone.ID, g.device.ID)
	wantErr(t, err, store.ErrNotFound, "device of a deleted tenant")
	_, err = r.Subjects().Get(ctx, gone.ID, g.subject.ID)
	wantErr(t, err, store.ErrNotFound, "subject of a deleted tenant")
	_, err = r.Keys().GetKeyset(ctx, gone.ID)
	wantErr(t, err, store.ErrNotFound, "keyset of a deleted tenant")
	if cur, err := r.Inventory().Current(ctx, gone.ID, g.device.ID); err != nil || len(cur) != 0 {
		t.Fatalf("inventory of a deleted tenant = %d values, %v", len(cur), err)
	}
	if entries, err := r.Audit().List(ctx, gone.ID, store.AuditFilter{}); err != nil || len(entries) != 2 {
		t.Fatalf("audit log of a deleted tenant = %d entries, %v; want both kept", len(entries), err)
	}

	if _, err := r.Devices().Get(ctx, kept.ID, k.device.ID); err != nil {
		t.Fatalf("a neighbour's device went: %v", err)
	}
	if _, err := r.Subjects().Get(ctx, kept.ID, k.subject.ID); err != nil {
		t.Fatalf("a neighbour's subject went: %v", err)
	}
	if _, err := r.Keys().GetKeyset(ctx, kept.ID); err != nil {
		t.Fatalf("a neighbour's keyset went: %v", err)
	}
	if cur, err := r.Inventory().Current(ctx, kept.ID, k.device.ID); err != nil || len(cur) != 1 {
		t.Fatalf("a neighbour's inventory = %d values, %v", len(cur), err)
	}
}

// testTenantDeleteRacesEnrolment: a device created while its tenant is
// being deleted either stops the deletion or is refused; it never outlives
// the tenant. The pauses only give the losing side time to run ahead; the
// outcome must not depend on them.
func testTenantDeleteRacesEnrolment(t *testing.T, st store.Store) {
	ctx := context.Background()
	root := newTenant(t, st, "")
	device := func(tenantID string) store.Device {
		id := store.NewID()
		return store.Device{ID: id, TenantID: tenantID, Ownership: "corporate", Platform: "ios", State: store.DevicePending,
			KeyID: "dkey-" + id, CreatedAt: at, UpdatedAt: at, Compliance: store.ComplianceUnknown}
	}
	deleteTenant := func(id string) error {
		return st.Tx(ctx, func(q store.Queries) error { return q.Tenants().Delete(ctx, id) })
	}

	// The device's transaction first: the deletion must wait for it, see the
	// device and refuse.
	first := newTenant(t, st, root.ID)
	d := device(first.ID)
	created, release := make(chan struct{}), make(chan struct{})
	enrolled := make(chan error, 1)
	go func() {
		enrolled <- st.Tx(ctx, func(q store.Queries) error {
			err := q.Devices().Create(ctx, d)
			close(created)
			<-release
			return err
		})
	}()
	<-created
	deleted := make(chan error, 1)
	go func() { deleted <- deleteTenant(first.ID) }()
	time.Sleep(300 * time.Millisecond)
	close(release)
	must(t, <-enrolled)
	wantErr(t, <-deleted, store.ErrConflict, "Delete while a device is being created")
	if _, err := st.Read().Devices().Get(ctx, first.ID, d.ID); err != nil {
		t.Fatalf("the device created first: %v", err)
	}
	if _, err := st.Read().Tenants().Get(ctx, first.ID); err != nil {
		t.Fatalf("the tenant whose deletion was refused: %v", err)
	}

	// The deletion first: the device must wait for it and find no tenant.
	second := newTenant(t, st, root.ID)
	gone, release := make(chan struct{}), make(chan struct{})
	go func() {
		deleted <- st.Tx(ctx, func(q store.Queries) error {
			err := q.Tenants().Delete(ctx, second.ID)
			close(gone)
			<-release
			return err
		})
	}()
	<-gone
	d = device(second.ID)
	go func() { enrolled <- st.Tx(ctx, func(q store.Queries) error { return q.Devices().Create(ctx, d) }) }()
	time.Sleep(300 * time.Millisecond)
	close(release)
	must(t, <-deleted)
	wantErr(t, <-enrolled, store.ErrNotFound, "Create in a tenant being deleted")
	_, err := st.Read().Devices().Get(ctx, second.ID, d.ID)
	wantErr(t, err, store.ErrNotFound, "a device created in a deleted tenant")
}
