package storetest

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// runManagement checks the device management aggregates.
func runManagement(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("ManagedDevices", func(t *testing.T) { testManagedDevices(t, open(t)) })
	t.Run("DeviceSearch", func(t *testing.T) { testDeviceSearch(t, open(t)) })
	t.Run("Groups", func(t *testing.T) { testGroups(t, open(t)) })
	t.Run("AssignmentScopes", func(t *testing.T) { testAssignmentScopes(t, open(t)) })
	t.Run("GroupDeleteCascades", func(t *testing.T) { testGroupDeleteCascades(t, open(t)) })
	t.Run("Profiles", func(t *testing.T) { testProfiles(t, open(t)) })
	t.Run("DeviceProfiles", func(t *testing.T) { testDeviceProfiles(t, open(t)) })
	t.Run("CompliancePolicies", func(t *testing.T) { testCompliancePolicies(t, open(t)) })
	t.Run("ComplianceStandings", func(t *testing.T) { testComplianceStandings(t, open(t)) })
	t.Run("ComplianceHistory", func(t *testing.T) { testComplianceHistory(t, open(t)) })
	t.Run("Actions", func(t *testing.T) { testActions(t, open(t)) })
	t.Run("ActionPurge", func(t *testing.T) { testActionPurge(t, open(t)) })
	t.Run("DepartedPINs", func(t *testing.T) { testDepartedPINs(t, open(t)) })
	t.Run("Apps", func(t *testing.T) { testApps(t, open(t)) })
	t.Run("ReportSchedules", func(t *testing.T) { testReportSchedules(t, open(t)) })
}

// managedDevice is newDevice as the management store reads it back.
func managedDevice(t *testing.T, st store.Store, tenantID string) store.Device {
	t.Helper()
	d := newDevice(t, st, tenantID, "", "corporate")
	d.Compliance = store.ComplianceUnknown
	return d
}

func newGroup(t *testing.T, st store.Store, tenantID, name string) store.Group {
	t.Helper()
	g := store.Group{ID: store.NewID(), TenantID: tenantID, Name: name, Description: "about " + name, Kind: store.GroupStatic,
		CreatedBy: "admin-1", CreatedAt: at, UpdatedAt: at}
	tx(t, st, func(q store.Queries) error { return q.Groups().Create(context.Background(), g) })
	g.CreatedAt, g.UpdatedAt = micro(at), micro(at)
	return g
}

// stringsEqual compares ID lists, treating nil and empty alike.
func stringsEqual(t *testing.T, what string, got []string, err error, want ...string) {
	t.Helper()
	must(t, err)
	if len(got) != len(want) || (len(want) > 0 && !slices.Equal(got, want)) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func sortedIDs(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func testGroups(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	g1 := newGroup(t, st, a.ID, "Sales")
	g2 := store.Group{ID: store.NewID(), TenantID: a.ID, Name: "Old iOS", Kind: store.GroupDynamic,
		Rule: []byte(`{"all":[]}`), CreatedBy: "admin-2", CreatedAt: micro(at), UpdatedAt: micro(at)}
	tx(t, st, func(q store.Queries) error { return q.Groups().Create(ctx, g2) })
	newGroup(t, st, b.ID, "Sales") // names are unique per tenant only
	dup := g1
	dup.ID = store.NewID()
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Groups().Create(ctx, dup) }), store.ErrConflict, "duplicate group name")

	r := st.Read().Groups()
	got, err := r.Get(ctx, a.ID, g2.ID)
	must(t, err)
	if !reflect.DeepEqual(got, g2) {
		t.Fatalf("Get = %+v, want %+v", got, g2)
	}
	_, err = r.Get(ctx, b.ID, g1.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	if list, err := r.List(ctx, a.ID, store.Page{}); err != nil || !reflect.DeepEqual(list, []store.Group{g1, g2}) {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if list, err := r.List(ctx, a.ID, store.Page{After: g1.ID, Limit: 1}); err != nil || len(list) != 1 || list[0].ID != g2.ID {
		t.Fatalf("List page 2 = %+v, %v", list, err)
	}
	if dyn, err := r.Dynamic(ctx, a.ID); err != nil || !reflect.DeepEqual(dyn, []store.Group{g2}) {
		t.Fatalf("Dynamic = %+v, %v", dyn, err)
	}

	renamed := g1
	renamed.Name = g2.Name
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Groups().Update(ctx, renamed) }), store.ErrConflict, "rename onto a taken name")
	g1.Name, g1.Description, g1.UpdatedAt = "Sales EMEA", "", micro(at.Add(time.Hour))
	tx(t, st, func(q store.Queries) error { return q.Groups().Update(ctx, g1) })
	foreign := g1
	foreign.TenantID = b.ID
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Groups().Update(ctx, foreign) }), store.ErrNotFound, "Update across tenants")

	d1, d2, d3 := managedDevice(t, st, a.ID), managedDevice(t, st, a.ID), managedDevice(t, st, a.ID)
	bDevice := managedDevice(t, st, b.ID)
	// Outside a transaction (Read) and inside one.
	added, err := st.Read().Groups().AddMembers(ctx, a.ID, g1.ID, []string{d2.ID, bDevice.ID, "no-such-device", d1.ID, d2.ID}, at)
	stringsEqual(t, "AddMembers", added, err, sortedIDs(d1.ID, d2.ID)...)
	tx(t, st, func(q store.Queries) error {
		added, err := q.Groups().AddMembers(ctx, a.ID, g1.ID, []string{d1.ID, d3.ID}, at)
		stringsEqual(t, "AddMembers again", added, err, d3.ID)
		added, err = q.Groups().AddMembers(ctx, a.ID, g2.ID, []string{d1.ID}, at)
		stringsEqual(t, "AddMembers to g2", added, err, d1.ID)
		return nil
	})
	_, err = st.Read().Groups().AddMembers(ctx, b.ID, g1.ID, []string{bDevice.ID}, at)
	wantErr(t, err, store.ErrNotFound, "AddMembers to another tenant's group")
	if got, err := r.Get(ctx, a.ID, g1.ID); err != nil || got.Members != 3 || !reflect.DeepEqual(withMembers(g1, 3), got) {
		t.Fatalf("Get after AddMembers = %+v, %v", got, err)
	}
	all := sortedIDs(d1.ID, d2.ID, d3.ID)
	page, err := r.Members(ctx, a.ID, g1.ID, store.Page{Limit: 2})
	stringsEqual(t, "Members page 1", page, err, all[:2]...)
	page, err = r.Members(ctx, a.ID, g1.ID, store.Page{After: all[1]})
	stringsEqual(t, "Members page 2", page, err, all[2])
	members, err := r.AllMembers(ctx, a.ID, g1.ID)
	stringsEqual(t, "AllMembers", members, err, all...)
	members, err = r.AllMembers(ctx, b.ID, g1.ID)
	stringsEqual(t, "AllMembers from another tenant", members, err)
	groups, err := r.GroupsOf(ctx, a.ID, d1.ID)
	stringsEqual(t, "GroupsOf", groups, err, sortedIDs(g1.ID, g2.ID)...)
	groups, err = r.GroupsOf(ctx, b.ID, d1.ID)
	stringsEqual(t, "GroupsOf from another tenant", groups, err)

	for _, c := range []struct {
		name, tenant, device string
		groups               []string
		want                 bool
	}{
		{"member of the second", a.ID, d1.ID, []string{"unknown", g2.ID}, true},
		{"member of neither", a.ID, d3.ID, []string{g2.ID}, false},
		{"no groups", a.ID, d1.ID, nil, false},
		{"other tenant", b.ID, d1.ID, []string{g1.ID, g2.ID}, false},
	} {
		in, err := r.InAny(ctx, c.tenant, c.device, c.groups)
		if must(t, err); in != c.want {
			t.Fatalf("InAny %s = %v, want %v", c.name, in, c.want)
		}
	}

	removed, err := st.Read().Groups().RemoveMembers(ctx, a.ID, g1.ID, []string{d2.ID, bDevice.ID, d2.ID})
	stringsEqual(t, "RemoveMembers", removed, err, d2.ID)
	removed, err = st.Read().Groups().RemoveMembers(ctx, a.ID, g1.ID, []string{d2.ID})
	stringsEqual(t, "RemoveMembers again", removed, err)
	_, err = st.Read().Groups().RemoveMembers(ctx, b.ID, g1.ID, []string{d1.ID})
	wantErr(t, err, store.ErrNotFound, "RemoveMembers through another tenant")
	members, err = r.AllMembers(ctx, a.ID, g1.ID)
	stringsEqual(t, "AllMembers after RemoveMembers", members, err, sortedIDs(d1.ID, d3.ID)...)
}

func withMembers(g store.Group, n int) store.Group {
	g.Members = n
	return g
}

func testAssignmentScopes(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	admin := newAdmin(t, st, a.ID)
	role, other := newRole(t, st, a.ID, "helpdesk"), newRole(t, st, a.ID, "auditor")
	g1, g2, foreign := newGroup(t, st, a.ID, "one"), newGroup(t, st, a.ID, "two"), newGroup(t, st, b.ID, "three")

	scoped := store.Assignment{ID: store.NewID(), AdminID: admin.ID, TenantID: a.ID, RoleID: role.ID,
		Groups: []string{g2.ID, g1.ID, g2.ID}, CreatedAt: at}
	tx(t, st, func(q store.Queries) error { return q.Assignments().Create(ctx, scoped) })
	scoped.Groups, scoped.CreatedAt = sortedIDs(g1.ID, g2.ID), micro(at)
	whole := store.Assignment{ID: store.NewID(), AdminID: admin.ID, TenantID: a.ID, RoleID: other.ID, CreatedAt: micro(at)}
	tx(t, st, func(q store.Queries) error { return q.Assignments().Create(ctx, whole) })

	bad := store.Assignment{ID: store.NewID(), AdminID: admin.ID, TenantID: a.ID, RoleID: newRole(t, st, a.ID, "x").ID,
		Groups: []string{g1.ID, foreign.ID}, CreatedAt: at}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Assignments().Create(ctx, bad) }), store.ErrNotFound,
		"Create scoped to another tenant's group")
	wantErr(t, st.Read().Assignments().Create(ctx, bad), store.ErrNotFound, "Create (outside Tx) scoped to another tenant's group")
	_, err := st.Read().Assignments().Get(ctx, a.ID, bad.ID)
	wantErr(t, err, store.ErrNotFound, "the refused assignment")

	r := st.Read().Assignments()
	if got, err := r.Get(ctx, a.ID, scoped.ID); err != nil || !reflect.DeepEqual(got, scoped) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, scoped)
	}
	want := []store.Assignment{scoped, whole}
	if got, err := r.ListForAdmin(ctx, admin.ID); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ListForAdmin = %+v, %v", got, err)
	}
	if got, err := r.ListForTenant(ctx, a.ID, store.Page{}); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ListForTenant = %+v, %v", got, err)
	}
	tx(t, st, func(q store.Queries) error { return q.Assignments().Delete(ctx, a.ID, scoped.ID) })
	// The scope rows went with the assignment: the same ID can be reused.
	tx(t, st, func(q store.Queries) error { return q.Assignments().Create(ctx, scoped) })
}

func testGroupDeleteCascades(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	admin := newAdmin(t, st, a.ID)
	gone, kept := newGroup(t, st, a.ID, "gone"), newGroup(t, st, a.ID, "kept")
	d := managedDevice(t, st, a.ID)
	profile := newProfile(t, st, a.ID, "com.example.wifi")
	app := newApp(t, st, a.ID, "com.example.notes")
	asg := store.Assignment{ID: store.NewID(), AdminID: admin.ID, TenantID: a.ID, RoleID: newRole(t, st, a.ID, "r").ID,
		Groups: []string{gone.ID, kept.ID}, CreatedAt: micro(at)}
	tx(t, st, func(q store.Queries) error {
		for _, g := range []string{gone.ID, kept.ID} {
			if _, err := q.Groups().AddMembers(ctx, a.ID, g, []string{d.ID}, at); err != nil {
				return err
			}
			if err := q.Profiles().Assign(ctx, a.ID, profile.ID, g, at); err != nil {
				return err
			}
			if err := q.Apps().Assign(ctx, store.AppAssignment{TenantID: a.ID, AppID: app.ID, GroupID: g, Mode: store.AppRequired}); err != nil {
				return err
			}
		}
		return q.Assignments().Create(ctx, asg)
	})
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Groups().Delete(ctx, b.ID, gone.ID) }), store.ErrNotFound,
		"Delete through another tenant")
	must(t, st.Read().Groups().Delete(ctx, a.ID, gone.ID))
	wantErr(t, st.Read().Groups().Delete(ctx, a.ID, gone.ID), store.ErrNotFound, "Delete twice")

	r := st.Read()
	_, err := r.Groups().Get(ctx, a.ID, gone.ID)
	wantErr(t, err, store.ErrNotFound, "deleted group")
	members, err := r.Groups().AllMembers(ctx, a.ID, gone.ID)
	stringsEqual(t, "members of the deleted group", members, err)
	groups, err := r.Groups().GroupsOf(ctx, a.ID, d.ID)
	stringsEqual(t, "GroupsOf after delete", groups, err, kept.ID)
	groups, err = r.Profiles().Groups(ctx, a.ID, profile.ID)
	stringsEqual(t, "profile groups after delete", groups, err, kept.ID)
	apps, err := r.Apps().Assignments(ctx, a.ID, app.ID)
	if must(t, err); len(apps) != 1 || apps[0].GroupID != kept.ID {
		t.Fatalf("app assignments after delete = %+v", apps)
	}
	// The scope keeps the deleted group: dropping it would widen the role.
	got, err := r.Assignments().Get(ctx, a.ID, asg.ID)
	want := []string{gone.ID, kept.ID}
	slices.Sort(want)
	stringsEqual(t, "assignment scope after delete", got.Groups, err, want...)
}
