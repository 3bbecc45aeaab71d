package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

func newProfile(t *testing.T, st store.Store, tenantID, identifier string) store.ConfigProfile {
	t.Helper()
	p := store.ConfigProfile{ID: store.NewID(), TenantID: tenantID, Name: "Profile " + identifier, Identifier: identifier,
		Kind: store.ProfileBuilt, Platform: "apple", Definition: []byte(`{"ssid":"corp"}`), Sealed: []byte("sealed-secrets"),
		Digest: "digest-1", PayloadTypes: []string{"com.apple.wifi.managed"}, CreatedBy: "admin-1", CreatedAt: at, UpdatedAt: at}
	tx(t, st, func(q store.Queries) error { return q.Profiles().Create(context.Background(), p) })
	p.CreatedAt, p.UpdatedAt = micro(at), micro(at)
	return p
}

func newApp(t *testing.T, st store.Store, tenantID, identifier string) store.CatalogueApp {
	t.Helper()
	a := store.CatalogueApp{ID: store.NewID(), TenantID: tenantID, Identifier: identifier, Name: "App " + identifier,
		Kind: store.AppApproved, StoreID: 1234567890, CreatedAt: at, UpdatedAt: at}
	tx(t, st, func(q store.Queries) error { return q.Apps().Create(context.Background(), a) })
	a.CreatedAt, a.UpdatedAt = micro(at), micro(at)
	return a
}

func testProfiles(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	p1, p2 := newProfile(t, st, a.ID, "com.example.wifi"), newProfile(t, st, a.ID, "com.example.vpn")
	custom := store.ConfigProfile{ID: store.NewID(), TenantID: a.ID, Name: "Uploaded", Identifier: "com.example.upload",
		Kind: store.ProfileCustom, Platform: "apple", Sealed: []byte("whole-file"), Digest: "d", CreatedBy: "admin-1",
		CreatedAt: micro(at), UpdatedAt: micro(at)}
	tx(t, st, func(q store.Queries) error { return q.Profiles().Create(ctx, custom) })
	newProfile(t, st, b.ID, p1.Identifier) // identifiers are unique per tenant only
	dup := p1
	dup.ID = store.NewID()
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Profiles().Create(ctx, dup) }), store.ErrConflict, "duplicate identifier")

	r := st.Read().Profiles()
	for _, want := range []store.ConfigProfile{p1, custom} {
		if got, err := r.Get(ctx, a.ID, want.ID); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Get = %+v, %v; want %+v", got, err, want)
		}
	}
	_, err := r.Get(ctx, b.ID, p1.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	if list, err := r.List(ctx, a.ID, store.Page{After: p1.ID}); err != nil || !reflect.DeepEqual(list, []store.ConfigProfile{p2, custom}) {
		t.Fatalf("List after p1 = %+v, %v", list, err)
	}

	changed := p1
	changed.Name, changed.Definition, changed.Sealed, changed.Digest = "Wi-Fi v2", []byte(`{"ssid":"corp2"}`), nil, "digest-2"
	changed.PayloadTypes, changed.UpdatedAt = []string{"com.apple.wifi.managed", "com.apple.security.root"}, micro(at.Add(time.Hour))
	changed.Identifier = "com.example.renamed" // never written
	tx(t, st, func(q store.Queries) error { return q.Profiles().Update(ctx, changed) })
	changed.Identifier = p1.Identifier
	if got, err := r.Get(ctx, a.ID, p1.ID); err != nil || !reflect.DeepEqual(got, changed) {
		t.Fatalf("after Update = %+v, %v; want %+v", got, err, changed)
	}
	changed.TenantID = b.ID
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Profiles().Update(ctx, changed) }), store.ErrNotFound, "Update across tenants")
	// Share holds what it names of the tenant's, and passes over the rest.
	tx(t, st, func(q store.Queries) error {
		return q.Profiles().Share(ctx, a.ID, []string{p1.ID, p2.ID, "no-such-profile"})
	})
	tx(t, st, func(q store.Queries) error { return q.Profiles().Share(ctx, b.ID, []string{p1.ID}) })
	tx(t, st, func(q store.Queries) error { return q.Profiles().Share(ctx, a.ID, nil) })

	g1, g2, bGroup := newGroup(t, st, a.ID, "g1"), newGroup(t, st, a.ID, "g2"), newGroup(t, st, b.ID, "g1")
	tx(t, st, func(q store.Queries) error {
		for _, as := range [][2]string{{p1.ID, g1.ID}, {p1.ID, g1.ID}, {p1.ID, g2.ID}, {p2.ID, g2.ID}} {
			if err := q.Profiles().Assign(ctx, a.ID, as[0], as[1], at); err != nil {
				return err
			}
		}
		return nil
	})
	wantErr(t, st.Read().Profiles().Assign(ctx, a.ID, p1.ID, bGroup.ID, at), store.ErrNotFound, "Assign to another tenant's group")
	wantErr(t, st.Read().Profiles().Assign(ctx, b.ID, p1.ID, bGroup.ID, at), store.ErrNotFound, "Assign another tenant's profile")
	groups, err := r.Groups(ctx, a.ID, p1.ID)
	stringsEqual(t, "Groups", groups, err, sortedIDs(g1.ID, g2.ID)...)
	for _, c := range []struct {
		name, tenant string
		groups       []string
		want         []string
	}{
		{"g1", a.ID, []string{g1.ID}, []string{p1.ID}},
		{"both, each profile once", a.ID, []string{g2.ID, g1.ID}, []string{p1.ID, p2.ID}},
		{"none", a.ID, nil, nil},
		{"other tenant", b.ID, []string{g1.ID, g2.ID}, nil},
	} {
		got, err := r.ForGroups(ctx, c.tenant, c.groups)
		var ids []string
		for _, p := range got {
			ids = append(ids, p.ID)
		}
		stringsEqual(t, "ForGroups "+c.name, ids, err, c.want...)
	}
	must(t, st.Read().Profiles().Unassign(ctx, a.ID, p1.ID, g2.ID))
	wantErr(t, st.Read().Profiles().Unassign(ctx, a.ID, p1.ID, g2.ID), store.ErrNotFound, "Unassign twice")
	d := managedDevice(t, st, a.ID)
	tx(t, st, func(q store.Queries) error {
		return q.DeviceProfiles().Put(ctx, store.DeviceProfile{TenantID: a.ID, DeviceID: d.ID, ProfileID: p1.ID, Digest: "digest-2",
			Status: store.ProfileInstalled, UpdatedAt: at})
	})
	wantErr(t, st.Read().Profiles().Delete(ctx, b.ID, p1.ID), store.ErrNotFound, "Delete through another tenant")
	must(t, st.Read().Profiles().Delete(ctx, a.ID, p1.ID))
	_, err = st.Read().DeviceProfiles().Get(ctx, a.ID, d.ID, p1.ID)
	wantErr(t, err, store.ErrNotFound, "device state of a deleted profile")
	groups, err = r.Groups(ctx, a.ID, p1.ID)
	stringsEqual(t, "Groups of a deleted profile", groups, err)
}

func testDeviceProfiles(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	p1, p2 := newProfile(t, st, a.ID, "com.example.one"), newProfile(t, st, a.ID, "com.example.two")
	bProfile := newProfile(t, st, b.ID, "com.example.one")
	d1, d2, bDevice := managedDevice(t, st, a.ID), managedDevice(t, st, a.ID), managedDevice(t, st, b.ID)
	put := func(q store.DeviceProfileStore, dp store.DeviceProfile) error { return q.Put(ctx, dp) }
	s1 := store.DeviceProfile{TenantID: a.ID, DeviceID: d1.ID, ProfileID: p1.ID, Digest: "digest-1", Status: store.ProfilePending,
		CommandID: "cmd-1", UpdatedAt: micro(at)}
	s2 := store.DeviceProfile{TenantID: a.ID, DeviceID: d1.ID, ProfileID: p2.ID, Digest: "digest-1", Status: store.ProfileFailed,
		CommandID: "cmd-2", Error: "MDM 4001", UpdatedAt: micro(at), Attempts: 2, RetryAt: micro(at.Add(time.Hour))}
	s3 := store.DeviceProfile{TenantID: a.ID, DeviceID: d2.ID, ProfileID: p1.ID, Digest: "digest-1", Status: store.ProfileInstalled,
		UpdatedAt: micro(at)}
	tx(t, st, func(q store.Queries) error {
		for _, s := range []store.DeviceProfile{s1, s2, s3} {
			if err := put(q.DeviceProfiles(), s); err != nil {
				return err
			}
		}
		return nil
	})
	for _, c := range []struct {
		name string
		dp   store.DeviceProfile
	}{
		{"another tenant's device", store.DeviceProfile{TenantID: a.ID, DeviceID: bDevice.ID, ProfileID: p1.ID, Status: "x"}},
		{"another tenant's profile", store.DeviceProfile{TenantID: a.ID, DeviceID: d1.ID, ProfileID: bProfile.ID, Status: "x"}},
		{"overwriting from another tenant", store.DeviceProfile{TenantID: b.ID, DeviceID: d1.ID, ProfileID: p1.ID, Status: "x"}},
	} {
		wantErr(t, put(st.Read().DeviceProfiles(), c.dp), store.ErrNotFound, "Put "+c.name)
	}
	r := st.Read().DeviceProfiles()
	if got, err := r.Get(ctx, a.ID, d1.ID, p1.ID); err != nil || !reflect.DeepEqual(got, s1) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, s1)
	}
	_, err := r.Get(ctx, b.ID, d1.ID, p1.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	if got, err := r.ByCommand(ctx, a.ID, "cmd-2"); err != nil || !reflect.DeepEqual(got, s2) {
		t.Fatalf("ByCommand = %+v, %v", got, err)
	}
	_, err = r.ByCommand(ctx, b.ID, "cmd-2")
	wantErr(t, err, store.ErrNotFound, "ByCommand from another tenant")
	if _, err := r.ByCommand(ctx, a.ID, ""); err == nil {
		t.Fatal("ByCommand with an empty command ID matched")
	}
	dueAt := func(when time.Time, p store.Page) []string {
		t.Helper()
		ids, err := r.DueForRetry(ctx, a.ID, when, p)
		must(t, err)
		return ids
	}
	if ids := dueAt(at.Add(time.Hour-time.Microsecond), store.Page{}); len(ids) != 0 {
		t.Fatalf("DueForRetry before the retry = %v", ids)
	}
	if ids := dueAt(at.Add(time.Hour), store.Page{}); !reflect.DeepEqual(ids, []string{d1.ID}) {
		t.Fatalf("DueForRetry at the retry = %v, want %s", ids, d1.ID)
	}
	if ids, err := r.DueForRetry(ctx, b.ID, at.Add(time.Hour), store.Page{}); err != nil || len(ids) != 0 {
		t.Fatalf("DueForRetry from another tenant = %v, %v", ids, err)
	}
	s1.Status, s1.CommandID, s1.Digest, s1.UpdatedAt = store.ProfileInstalled, "", "digest-2", micro(at.Add(time.Minute))
	s1.Attempts, s1.RetryAt = 1, micro(at.Add(time.Hour)) // upserted with a retry: both devices due, paged
	must(t, put(st.Read().DeviceProfiles(), s1))
	s3.RetryAt = micro(at)
	must(t, put(st.Read().DeviceProfiles(), s3))
	firstDue, secondDue := dueAt(at.Add(time.Hour), store.Page{Limit: 1}), []string(nil)
	if len(firstDue) == 1 {
		secondDue = dueAt(at.Add(time.Hour), store.Page{After: firstDue[0]})
	}
	if ids := append(firstDue, secondDue...); !reflect.DeepEqual(ids, sortedIDs(d1.ID, d2.ID)) {
		t.Fatalf("DueForRetry pages = %v", ids)
	}
	s1.Attempts, s1.RetryAt, s3.RetryAt = 0, time.Time{}, time.Time{}
	must(t, put(st.Read().DeviceProfiles(), s1))
	must(t, put(st.Read().DeviceProfiles(), s3))
	if list, err := r.ForDevice(ctx, a.ID, d1.ID); err != nil || !reflect.DeepEqual(list, []store.DeviceProfile{s1, s2}) {
		t.Fatalf("ForDevice = %+v, %v", list, err)
	}
	want := []store.DeviceProfile{s1, s3}
	if d2.ID < d1.ID {
		want = []store.DeviceProfile{s3, s1}
	}
	first, err := r.ForProfile(ctx, a.ID, p1.ID, store.Page{Limit: 1})
	must(t, err)
	rest, err := r.ForProfile(ctx, a.ID, p1.ID, store.Page{After: first[0].DeviceID})
	if must(t, err); !reflect.DeepEqual(append(first, rest...), want) {
		t.Fatalf("ForProfile pages = %+v then %+v, want %+v", first, rest, want)
	}
	if list, err := r.ForProfile(ctx, b.ID, p1.ID, store.Page{}); err != nil || len(list) != 0 {
		t.Fatalf("ForProfile from another tenant = %+v, %v", list, err)
	}
	wantErr(t, st.Read().DeviceProfiles().Delete(ctx, b.ID, d1.ID, p1.ID), store.ErrNotFound, "Delete through another tenant")
	must(t, st.Read().DeviceProfiles().Delete(ctx, a.ID, d1.ID, p1.ID))
	wantErr(t, st.Read().DeviceProfiles().Delete(ctx, a.ID, d1.ID, p1.ID), store.ErrNotFound, "Delete twice")
}

func testApps(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	notes := newApp(t, st, a.ID, "com.example.notes")
	blocked := store.CatalogueApp{ID: store.NewID(), TenantID: a.ID, Identifier: "com.example.game", Name: "Game",
		Kind: store.AppBlocked, ManifestURL: "https://apps.example.test/game.plist", CreatedAt: micro(at), UpdatedAt: micro(at)}
	tx(t, st, func(q store.Queries) error { return q.Apps().Create(ctx, blocked) })
	newApp(t, st, b.ID, notes.Identifier)
	dup := notes
	dup.ID = store.NewID()
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Apps().Create(ctx, dup) }), store.ErrConflict, "duplicate app identifier")
	r := st.Read().Apps()
	if got, err := r.Get(ctx, a.ID, blocked.ID); err != nil || !reflect.DeepEqual(got, blocked) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	_, err := r.Get(ctx, b.ID, notes.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	notes.Name, notes.Kind, notes.StoreID, notes.ManifestURL, notes.UpdatedAt = "Notes 2", store.AppBlocked, 0, "https://x.test/m", micro(at.Add(time.Hour))
	tx(t, st, func(q store.Queries) error { return q.Apps().Update(ctx, notes) })
	if list, err := r.List(ctx, a.ID, store.Page{}); err != nil || !reflect.DeepEqual(list, []store.CatalogueApp{notes, blocked}) {
		t.Fatalf("List = %+v, %v", list, err)
	}
	foreign := notes
	foreign.TenantID = b.ID
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Apps().Update(ctx, foreign) }), store.ErrNotFound, "Update across tenants")

	g1, g2, bGroup := newGroup(t, st, a.ID, "g1"), newGroup(t, st, a.ID, "g2"), newGroup(t, st, b.ID, "g1")
	assign := func(appID, groupID, mode string) error {
		return st.Read().Apps().Assign(ctx, store.AppAssignment{TenantID: a.ID, AppID: appID, GroupID: groupID, Mode: mode})
	}
	must(t, assign(notes.ID, g1.ID, store.AppRequired))
	must(t, assign(notes.ID, g1.ID, store.AppAvailable)) // upsert changes the mode
	must(t, assign(notes.ID, g2.ID, store.AppRequired))
	must(t, assign(blocked.ID, g2.ID, store.AppAvailable))
	wantErr(t, assign(notes.ID, bGroup.ID, store.AppRequired), store.ErrNotFound, "Assign to another tenant's group")
	wantErr(t, st.Read().Apps().Assign(ctx, store.AppAssignment{TenantID: b.ID, AppID: notes.ID, GroupID: bGroup.ID, Mode: "required"}),
		store.ErrNotFound, "Assign another tenant's app")
	asg := func(appID, groupID, mode string) store.AppAssignment {
		return store.AppAssignment{TenantID: a.ID, AppID: appID, GroupID: groupID, Mode: mode}
	}
	byGroup := []store.AppAssignment{asg(notes.ID, g1.ID, store.AppAvailable), asg(notes.ID, g2.ID, store.AppRequired)}
	if g2.ID < g1.ID {
		byGroup[0], byGroup[1] = byGroup[1], byGroup[0]
	}
	if got, err := r.Assignments(ctx, a.ID, notes.ID); err != nil || !reflect.DeepEqual(got, byGroup) {
		t.Fatalf("Assignments = %+v, %v; want %+v", got, err, byGroup)
	}
	want := []store.AppAssignment{asg(notes.ID, g2.ID, store.AppRequired), asg(blocked.ID, g2.ID, store.AppAvailable)}
	if got, err := r.ForGroups(ctx, a.ID, []string{g2.ID}); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ForGroups = %+v, %v; want %+v", got, err, want)
	}
	if got, err := r.ForGroups(ctx, b.ID, []string{g1.ID, g2.ID}); err != nil || len(got) != 0 {
		t.Fatalf("ForGroups from another tenant = %+v, %v", got, err)
	}
	must(t, st.Read().Apps().Unassign(ctx, a.ID, notes.ID, g2.ID))
	wantErr(t, st.Read().Apps().Unassign(ctx, a.ID, notes.ID, g2.ID), store.ErrNotFound, "Unassign twice")
	wantErr(t, st.Read().Apps().Delete(ctx, b.ID, notes.ID), store.ErrNotFound, "Delete through another tenant")
	must(t, st.Read().Apps().Delete(ctx, a.ID, notes.ID))
	if got, err := r.ForGroups(ctx, a.ID, []string{g1.ID, g2.ID}); err != nil || !reflect.DeepEqual(got, want[1:]) {
		t.Fatalf("ForGroups after Delete = %+v, %v", got, err)
	}
}
