package storetest

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

func testManagedDevices(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	d1, d2, d3 := managedDevice(t, st, a.ID), managedDevice(t, st, a.ID), managedDevice(t, st, a.ID)
	bDevice := managedDevice(t, st, b.ID)
	r := st.Read().ManagedDevices()

	p1 := store.DeviceProjection{TenantID: a.ID, DeviceID: d1.ID, OSVersion: "17.4.1", OSVersionKey: "017.004.001",
		Model: "iPhone15,2", Facts: []byte(`{"os.version":"17.4.1"}`)}
	p2 := store.DeviceProjection{TenantID: a.ID, DeviceID: d2.ID, OSVersion: "14.2", OSVersionKey: "014.002.000", Model: "Mac14,2"}
	tx(t, st, func(q store.Queries) error {
		return cmp.Or(q.ManagedDevices().SetProjection(ctx, p1), q.ManagedDevices().SetProjection(ctx, p2))
	})
	wantErr(t, r.SetProjection(ctx, store.DeviceProjection{TenantID: b.ID, DeviceID: d1.ID, Model: "x"}), store.ErrNotFound,
		"SetProjection across tenants")
	d3.State, d3.UpdatedAt = store.DeviceRetired, micro(at)
	tx(t, st, func(q store.Queries) error { return q.Devices().Update(ctx, d3) })
	p3 := store.DeviceProjection{TenantID: a.ID, DeviceID: d3.ID}
	if got, err := r.Projections(ctx, a.ID, ""); err != nil || !reflect.DeepEqual(got, byDevice(p1, p2, p3)) {
		t.Fatalf("Projections = %+v, %v", got, err)
	}
	if got, err := r.Projections(ctx, a.ID, store.DeviceEnrolled); err != nil || !reflect.DeepEqual(got, byDevice(p1, p2)) {
		t.Fatalf("Projections of enrolled devices = %+v, %v", got, err)
	}

	checked := micro(at.Add(time.Minute))
	must(t, r.SetCompliance(ctx, a.ID, d1.ID, store.ComplianceNoncompliant, checked))
	wantErr(t, r.SetCompliance(ctx, b.ID, d2.ID, store.ComplianceCompliant, checked), store.ErrNotFound, "SetCompliance across tenants")
	must(t, r.SetStaleSince(ctx, a.ID, d2.ID, checked))
	wantErr(t, r.SetStaleSince(ctx, b.ID, d1.ID, checked), store.ErrNotFound, "SetStaleSince across tenants")
	d1.OSVersion, d1.Model, d1.Compliance, d1.ComplianceAt = p1.OSVersion, p1.Model, store.ComplianceNoncompliant, checked
	d2.OSVersion, d2.Model, d2.StaleSince = p2.OSVersion, p2.Model, checked
	for _, want := range []store.Device{d1, d2} {
		if got, err := st.Read().Devices().Get(ctx, a.ID, want.ID); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("device after management writes = %+v, %v; want %+v", got, err, want)
		}
	}
	must(t, r.SetStaleSince(ctx, a.ID, d2.ID, time.Time{}))
	if got, err := st.Read().Devices().Get(ctx, a.ID, d2.ID); err != nil || !got.StaleSince.IsZero() {
		t.Fatalf("StaleSince after clearing = %v, %v", got.StaleSince, err)
	}

	// Stale: enrolled devices only, oldest check-in first, within the tenant.
	d1.LastSeenAt, d2.LastSeenAt = micro(at.Add(-2*time.Hour)), micro(at.Add(-3*time.Hour))
	tx(t, st, func(q store.Queries) error {
		return cmp.Or(q.Devices().Update(ctx, d1), q.Devices().Update(ctx, d2), q.Devices().Update(ctx, bDevice))
	})
	for _, c := range []struct {
		cutoff time.Time
		limit  int
		want   []string
	}{
		{at.Add(-time.Hour), 0, []string{d2.ID, d1.ID}},
		{at.Add(-time.Hour), 1, []string{d2.ID}},
		{at.Add(-150 * time.Minute), 0, []string{d2.ID}},
		{at.Add(-5 * time.Hour), 0, nil},
	} {
		got, err := r.Stale(ctx, a.ID, c.cutoff, time.Time{}, store.StaleCursor{}, c.limit)
		stringsEqual(t, fmt.Sprintf("Stale(%v, %d)", c.cutoff, c.limit), deviceIDs(got), err, c.want...)
	}
	// The cursor goes on after the last device of a page.
	next, err := r.Stale(ctx, a.ID, at.Add(-time.Hour), time.Time{}, store.StaleCursor{LastSeenAt: d2.LastSeenAt, ID: d2.ID}, 1)
	stringsEqual(t, "Stale after the first page", deviceIDs(next), err, d1.ID)
	// Flagged devices come back only once flagged before flaggedBefore, and
	// a check-in clears the flag.
	tx(t, st, func(q store.Queries) error {
		return q.ManagedDevices().SetStaleSince(ctx, a.ID, d2.ID, at.Add(-time.Hour))
	})
	got, err := r.Stale(ctx, a.ID, at.Add(-time.Hour), time.Time{}, store.StaleCursor{}, 0)
	stringsEqual(t, "Stale without flagged ones", deviceIDs(got), err, d1.ID)
	got, err = r.Stale(ctx, a.ID, at.Add(-time.Hour), at.Add(-30*time.Minute), store.StaleCursor{}, 0)
	stringsEqual(t, "Stale with ones flagged before", deviceIDs(got), err, d2.ID, d1.ID)
	got, err = r.Stale(ctx, a.ID, at.Add(-time.Hour), at.Add(-2*time.Hour), store.StaleCursor{}, 0)
	stringsEqual(t, "Stale with ones flagged long before", deviceIDs(got), err, d1.ID)
	tx(t, st, func(q store.Queries) error { return q.Devices().Touch(ctx, a.ID, d2.ID, at) })
	if got, err := st.Read().Devices().Get(ctx, a.ID, d2.ID); err != nil || !got.StaleSince.IsZero() {
		t.Fatalf("StaleSince after a check-in = %v, %v", got.StaleSince, err)
	}
	// Two devices last seen at the same moment: a page of one ends between
	// them, and the cursor's ID takes up the other, neither skipped nor
	// seen twice.
	d3.State, d3.LastSeenAt = store.DeviceEnrolled, d1.LastSeenAt // the retired one, back
	tx(t, st, func(q store.Queries) error { return q.Devices().Update(ctx, d3) })
	tied := []string{d1.ID, d3.ID}
	slices.Sort(tied)
	var cursor store.StaleCursor
	for _, want := range append(tied, "") {
		got, err := r.Stale(ctx, a.ID, at.Add(-time.Hour), time.Time{}, cursor, 1)
		if err != nil || len(got) > 1 || (want == "") != (len(got) == 0) || (len(got) == 1 && got[0].ID != want) {
			t.Fatalf("Stale after %+v = %v, %v; want [%s]", cursor, deviceIDs(got), err, want)
		}
		if len(got) == 1 {
			cursor = store.StaleCursor{LastSeenAt: got[0].LastSeenAt, ID: got[0].ID}
		}
	}
}

func byDevice(ps ...store.DeviceProjection) []store.DeviceProjection {
	return slices.SortedFunc(slices.Values(ps), func(a, b store.DeviceProjection) int { return cmp.Compare(a.DeviceID, b.DeviceID) })
}

func deviceIDs(ds []store.Device) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// searchFixture is a tenant's devices with the attributes a search reads,
// so the test can work out every expected answer independently.
type searchFixture struct {
	devices []store.Device
	osKey   map[string]string
	groups  map[string][]string // group ID -> member IDs
}

var searchModels = []string{"iPhone15,2", "iPad13,1", "Mac_14,2", "MacX14,3", "iphone-x"}

// seedSearch creates n devices with repeating attributes: every sort column
// has ties, so pagination must fall back on the ID.
func seedSearch(t *testing.T, st store.Store, tenantID string, n int) searchFixture {
	ctx := context.Background()
	f := searchFixture{osKey: map[string]string{}, groups: map[string][]string{}}
	even, third := newGroup(t, st, tenantID, "even"), newGroup(t, st, tenantID, "third")
	tx(t, st, func(q store.Queries) error {
		for i := range n {
			d := store.Device{ID: store.NewID(), TenantID: tenantID, Ownership: []string{"corporate", "byod"}[i%2],
				Platform: []string{"ios", "macos", "ios"}[i%3], State: store.DeviceEnrolled,
				EnrolledAt: micro(at.Add(time.Duration(i%4) * time.Minute)), LastSeenAt: micro(at.Add(time.Duration(i%5) * time.Hour)),
				CreatedAt: micro(at), UpdatedAt: micro(at), Compliance: []string{store.ComplianceUnknown, store.ComplianceCompliant,
					store.ComplianceNoncompliant}[i%3]}
			if i%7 == 6 {
				d.State = store.DeviceRetired
			}
			if i%10 == 9 {
				d.LastSeenAt = time.Time{} // never checked in
			}
			d.OSVersion, d.Model = fmt.Sprintf("%d.%d", 15+i%3, i%4), searchModels[i%len(searchModels)]
			key := fmt.Sprintf("%03d.%03d.000", 15+i%3, i%4)
			if err := q.Devices().Create(ctx, d); err != nil {
				return err
			}
			if err := q.ManagedDevices().SetProjection(ctx, store.DeviceProjection{TenantID: tenantID, DeviceID: d.ID,
				OSVersion: d.OSVersion, OSVersionKey: key, Model: d.Model}); err != nil {
				return err
			}
			if d.Compliance != store.ComplianceUnknown {
				d.ComplianceAt = micro(at)
				if err := q.ManagedDevices().SetCompliance(ctx, tenantID, d.ID, d.Compliance, at); err != nil {
					return err
				}
			}
			f.devices, f.osKey[d.ID] = append(f.devices, d), key
			for _, g := range []struct {
				id     string
				member bool
			}{{even.ID, i%2 == 0}, {third.ID, i%3 == 0}} {
				if !g.member {
					continue
				}
				if _, err := q.Groups().AddMembers(ctx, tenantID, g.id, []string{d.ID}, at); err != nil {
					return err
				}
				f.groups[g.id] = append(f.groups[g.id], d.ID)
			}
		}
		return nil
	})
	return f
}

// sortKey is the expected order of a device under sortBy.
func (f searchFixture) compare(sortBy store.DeviceSort, a, b store.Device) int {
	var c int
	switch sortBy {
	case store.SortByLastSeen:
		c = cmp.Compare(a.LastSeenAt.UnixMicro()*boolSign(!a.LastSeenAt.IsZero()), b.LastSeenAt.UnixMicro()*boolSign(!b.LastSeenAt.IsZero()))
	case store.SortByEnrolled:
		c = a.EnrolledAt.Compare(b.EnrolledAt)
	case store.SortByOSVersion:
		c = strings.Compare(f.osKey[a.ID], f.osKey[b.ID])
	case store.SortByModel:
		c = strings.Compare(a.Model, b.Model)
	}
	return cmp.Or(c, strings.Compare(a.ID, b.ID))
}

func boolSign(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// matches is the reference implementation of DeviceQuery's filters.
func (f searchFixture) matches(q store.DeviceQuery, d store.Device) bool {
	inGroup := func(g string) bool { return slices.Contains(f.groups[g], d.ID) }
	seen := d.LastSeenAt.UnixMicro() * boolSign(!d.LastSeenAt.IsZero())
	switch {
	case q.Platform != "" && d.Platform != q.Platform,
		q.Ownership != "" && d.Ownership != q.Ownership,
		q.State != "" && d.State != q.State,
		q.Compliance != "" && d.Compliance != q.Compliance,
		q.GroupID != "" && !inGroup(q.GroupID),
		q.Scope != nil && !slices.ContainsFunc(q.Scope, inGroup),
		!q.LastSeenBefore.IsZero() && seen >= q.LastSeenBefore.UnixMicro(),
		!q.LastSeenAfter.IsZero() && seen <= q.LastSeenAfter.UnixMicro(),
		q.OSVersionMin != "" && f.osKey[d.ID] < q.OSVersionMin,
		q.OSVersionMax != "" && f.osKey[d.ID] > q.OSVersionMax,
		q.ModelPrefix != "" && !strings.HasPrefix(strings.ToLower(d.Model), strings.ToLower(q.ModelPrefix)):
		return false
	}
	return true
}

func testDeviceSearch(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	f := seedSearch(t, st, a.ID, 60)
	other := seedSearch(t, st, b.ID, 12)
	var even, third string
	for g, members := range f.groups {
		if len(members) == 30 {
			even = g
		} else {
			third = g
		}
	}
	cases := []struct {
		name string
		q    store.DeviceQuery
	}{
		{"all", store.DeviceQuery{}},
		{"platform", store.DeviceQuery{Platform: "macos"}},
		{"ownership", store.DeviceQuery{Ownership: "byod"}},
		{"state", store.DeviceQuery{State: store.DeviceRetired}},
		{"compliance", store.DeviceQuery{Compliance: store.ComplianceNoncompliant}},
		{"group", store.DeviceQuery{GroupID: third}},
		{"scope", store.DeviceQuery{Scope: []string{third, even, "no-such-group"}}},
		{"last seen before", store.DeviceQuery{LastSeenBefore: at.Add(2 * time.Hour)}},
		{"last seen after", store.DeviceQuery{LastSeenAfter: at.Add(time.Hour)}},
		{"os range", store.DeviceQuery{OSVersionMin: "016.000.000", OSVersionMax: "016.002.000"}},
		{"model prefix, any case", store.DeviceQuery{ModelPrefix: "IP"}},
		{"model prefix with a LIKE wildcard", store.DeviceQuery{ModelPrefix: "mac_"}},
		{"platform + compliance", store.DeviceQuery{Platform: "ios", Compliance: store.ComplianceCompliant}},
		{"ownership + last seen before", store.DeviceQuery{Ownership: "corporate", LastSeenBefore: at.Add(3 * time.Hour)}},
		{"group + scope", store.DeviceQuery{GroupID: even, Scope: []string{third}}},
		{"everything", store.DeviceQuery{Platform: "ios", Ownership: "corporate", State: store.DeviceEnrolled,
			Scope: []string{even}, LastSeenAfter: at.Add(-time.Hour), OSVersionMin: "015.000.000", ModelPrefix: "i"}},
		{"other tenant's group", store.DeviceQuery{GroupID: firstKey(other.groups)}},
	}
	sorts := []store.DeviceSort{"", store.SortByID, store.SortByLastSeen, store.SortByEnrolled, store.SortByOSVersion, store.SortByModel}
	for _, c := range cases {
		for _, sortBy := range sorts {
			for _, desc := range []bool{false, true} {
				q := c.q
				q.Sort, q.Descending, q.Limit = sortBy, desc, 7
				var want []store.Device
				for _, d := range f.devices {
					if f.matches(q, d) {
						want = append(want, d)
					}
				}
				slices.SortFunc(want, func(x, y store.Device) int {
					if desc {
						return -f.compare(sortBy, x, y)
					}
					return f.compare(sortBy, x, y)
				})
				got := walkSearch(t, st, a.ID, q)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("Search %s sort %q desc=%v: got %v\nwant %v", c.name, sortBy, desc, deviceIDs(got), deviceIDs(want))
				}
			}
		}
	}

	r := st.Read().ManagedDevices()
	if page, err := r.Search(ctx, a.ID, store.DeviceQuery{Scope: []string{}}); err != nil || len(page.Devices) != 0 {
		t.Fatalf("Search with an empty scope = %d devices, %v", len(page.Devices), err)
	}
	if page, err := r.Search(ctx, b.ID, store.DeviceQuery{}); err != nil || !reflect.DeepEqual(deviceIDs(page.Devices), sortedDeviceIDs(other.devices)) {
		t.Fatalf("Search of the other tenant = %v, %v", deviceIDs(page.Devices), err)
	}
	if page, err := r.Search(ctx, a.ID, store.DeviceQuery{}); err != nil || len(page.Devices) != 60 || page.Next != (store.DeviceCursor{}) {
		t.Fatalf("Search with the default limit = %d devices, next %+v, %v", len(page.Devices), page.Next, err)
	}
	for _, q := range []store.DeviceQuery{
		{Sort: "colour"},
		{Sort: store.SortByLastSeen, After: store.DeviceCursor{Value: "yesterday", ID: f.devices[0].ID}},
	} {
		if _, err := r.Search(ctx, a.ID, q); err == nil {
			t.Fatalf("Search %+v: no error", q)
		}
	}
}

// walkSearch follows q's cursors to the end, failing on a repeated device
// or an empty page before the end.
func walkSearch(t *testing.T, st store.Store, tenantID string, q store.DeviceQuery) []store.Device {
	t.Helper()
	var all []store.Device
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		page, err := st.Read().ManagedDevices().Search(context.Background(), tenantID, q)
		must(t, err)
		if len(page.Devices) > q.Limit || pages > 100 {
			t.Fatalf("Search returned %d devices for limit %d (page %d)", len(page.Devices), q.Limit, pages)
		}
		for _, d := range page.Devices {
			if seen[d.ID] {
				t.Fatalf("Search returned %s twice", d.ID)
			}
			seen[d.ID] = true
		}
		all = append(all, page.Devices...)
		if page.Next == (store.DeviceCursor{}) {
			return all
		}
		if len(page.Devices) != q.Limit {
			t.Fatalf("a page of %d devices (limit %d) has a next cursor", len(page.Devices), q.Limit)
		}
		if last := page.Devices[len(page.Devices)-1]; page.Next.ID != last.ID || !validCursorValue(q.Sort, page.Next.Value, last) {
			t.Fatalf("cursor %+v does not point at the last device %+v", page.Next, last)
		}
		q.After = page.Next
	}
}

func validCursorValue(sortBy store.DeviceSort, value string, d store.Device) bool {
	switch sortBy {
	case store.SortByLastSeen:
		return value == strconv.FormatInt(d.LastSeenAt.UnixMicro()*boolSign(!d.LastSeenAt.IsZero()), 10)
	case store.SortByEnrolled:
		return value == strconv.FormatInt(d.EnrolledAt.UnixMicro(), 10)
	case store.SortByModel:
		return value == d.Model
	case store.SortByOSVersion:
		return value != "" && strings.HasPrefix(value, "0")
	}
	return value == d.ID
}

func sortedDeviceIDs(ds []store.Device) []string {
	ids := deviceIDs(ds)
	slices.Sort(ids)
	return ids
}

func firstKey(m map[string][]string) string {
	for k := range m {
		return k
	}
	return ""
}
