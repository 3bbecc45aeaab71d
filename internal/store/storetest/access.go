package storetest

import (
	"context"
	"reflect"
	"testing"

	"github.com/steward-mdm/steward/internal/store"
)

func testRoles(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	other := newTenant(t, st, "")
	ops := newRole(t, st, tn.ID, "ops")
	newRole(t, st, other.ID, "ops") // same name, another tenant: allowed
	r := st.Read().Roles()
	got, err := r.Get(ctx, tn.ID, ops.ID)
	must(t, err)
	if !reflect.DeepEqual(got, ops) {
		t.Fatalf("Get = %+v, want %+v", got, ops)
	}
	_, err = r.Get(ctx, other.ID, ops.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	dup := store.Role{ID: store.NewID(), TenantID: tn.ID, Name: "ops", CreatedAt: at}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Roles().Create(ctx, dup) }),
		store.ErrConflict, "Create with taken name")

	ops.Name, ops.Description, ops.Permissions = "operators", "runs things", []string{"device.read"}
	tx(t, st, func(q store.Queries) error { return q.Roles().Update(ctx, ops) })
	list, err := r.List(ctx, tn.ID)
	must(t, err)
	if len(list) != 1 || !reflect.DeepEqual(list[0], ops) {
		t.Fatalf("List = %+v, want [%+v]", list, ops)
	}
	foreign := ops
	foreign.TenantID = other.ID
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Roles().Update(ctx, foreign) }),
		store.ErrNotFound, "Update through another tenant")

	a := newAdmin(t, st, tn.ID)
	asg := store.Assignment{ID: store.NewID(), AdminID: a.ID, TenantID: tn.ID, RoleID: ops.ID, CreatedAt: at}
	tx(t, st, func(q store.Queries) error { return q.Assignments().Create(ctx, asg) })
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Roles().Delete(ctx, tn.ID, ops.ID) }),
		store.ErrConflict, "Delete an assigned role")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Roles().Delete(ctx, other.ID, ops.ID) }),
		store.ErrNotFound, "Delete through another tenant")
	tx(t, st, func(q store.Queries) error {
		if err := q.Assignments().Delete(ctx, tn.ID, asg.ID); err != nil {
			return err
		}
		return q.Roles().Delete(ctx, tn.ID, ops.ID)
	})
	_, err = r.Get(ctx, tn.ID, ops.ID)
	wantErr(t, err, store.ErrNotFound, "Get after Delete")
}

func testAssignments(t *testing.T, st store.Store) {
	ctx := context.Background()
	root := newTenant(t, st, "")
	child := newTenant(t, st, root.ID)
	a := newAdmin(t, st, root.ID)
	b := newAdmin(t, st, root.ID)
	role := newRole(t, st, root.ID, "ops")
	mk := func(admin, tenant string) store.Assignment {
		x := store.Assignment{ID: store.NewID(), AdminID: admin, TenantID: tenant, RoleID: role.ID, CreatedAt: at}
		tx(t, st, func(q store.Queries) error { return q.Assignments().Create(ctx, x) })
		x.CreatedAt = micro(at)
		return x
	}
	a1, a2, b1 := mk(a.ID, root.ID), mk(a.ID, child.ID), mk(b.ID, root.ID)
	dup := a1
	dup.ID = store.NewID()
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Assignments().Create(ctx, dup) }),
		store.ErrConflict, "Create duplicate admin/tenant/role")

	r := st.Read().Assignments()
	got, err := r.Get(ctx, root.ID, a1.ID)
	must(t, err)
	if !reflect.DeepEqual(got, a1) {
		t.Fatalf("Get = %+v, want %+v", got, a1)
	}
	_, err = r.Get(ctx, child.ID, a1.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	forAdmin, err := r.ListForAdmin(ctx, a.ID)
	must(t, err)
	if !reflect.DeepEqual(forAdmin, []store.Assignment{a1, a2}) {
		t.Fatalf("ListForAdmin = %+v", forAdmin)
	}
	forTenant, err := r.ListForTenant(ctx, root.ID, store.Page{Limit: 1})
	must(t, err)
	rest, err := r.ListForTenant(ctx, root.ID, store.Page{After: forTenant[0].ID})
	must(t, err)
	if len(forTenant) != 1 || len(rest) != 1 || forTenant[0].ID != a1.ID || rest[0].ID != b1.ID {
		t.Fatalf("ListForTenant pages = %+v, %+v", forTenant, rest)
	}
	n, err := r.CountForRole(ctx, root.ID, role.ID)
	must(t, err)
	if n != 2 {
		t.Fatalf("CountForRole = %d, want 2", n)
	}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Assignments().Delete(ctx, child.ID, a1.ID) }),
		store.ErrNotFound, "Delete through another tenant")
	tx(t, st, func(q store.Queries) error { return q.Assignments().Delete(ctx, child.ID, a2.ID) })
	if n, _ := r.CountForRole(ctx, child.ID, role.ID); n != 0 {
		t.Fatalf("CountForRole after Delete = %d", n)
	}
}
