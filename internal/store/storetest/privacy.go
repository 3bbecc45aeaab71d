package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// runPrivacy checks the privacy-core aggregates; each subtest gets its own
// store because purges and the outbox span every tenant.
func runPrivacy(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"Subjects", testSubjects},
		{"Devices", testDevices},
		{"InventoryPut", testInventoryPut},
		{"InventoryFieldValues", testInventoryFieldValues},
		{"InventoryHiddenValues", testInventoryHiddenValues},
		{"InventoryDeletes", testInventoryDeletes},
		{"InventoryRetention", testInventoryRetention},
		{"InventoryPurge", testInventoryPurge},
		{"InventoryPurgeNamesDevices", testInventoryPurgeNamesDevices},
		{"InventoryHideCategory", testInventoryHideCategory},
		{"DeviceIdentifierIndexes", testDeviceIdentifierIndexes},
		{"Keysets", testKeysets},
		{"DataKeys", testDataKeys},
		{"PrivacySettings", testPrivacySettings},
		{"Approvals", testApprovals},
		{"ApprovalDecidedOnce", testApprovalDecidedOnce},
		{"ApprovalSecrets", testApprovalSecrets},
		{"Notices", testNotices},
		{"Consents", testConsents},
		{"ConsentWithdrawnOnce", testConsentWithdrawnOnce},
		{"ConsentShownTexts", testConsentShownTexts},
		{"AccessRecords", testAccessRecords},
		{"AccessPurge", testAccessPurge},
		{"Reveals", testReveals},
		{"Erasures", testErasures},
		{"Notifications", testNotifications},
		{"PortalTokens", testPortalTokens},
		{"DeleteForSubject", testDeleteForSubject},
	}
	t.Run("Privacy", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
		}
	})
}

func newSubject(t *testing.T, st store.Store, tenantID string, emailIndex []byte) store.Subject {
	t.Helper()
	id := store.NewID()
	s := store.Subject{ID: id, TenantID: tenantID, Pseudonym: "person-" + id[len(id)-6:], EmailIndex: emailIndex,
		Profile: []byte("profile-ct-" + id), KeyID: "key-" + id, Locale: "de", State: store.SubjectActive,
		CreatedAt: at, UpdatedAt: at}
	tx(t, st, func(q store.Queries) error { return q.Subjects().Create(context.Background(), s) })
	s.CreatedAt, s.UpdatedAt = micro(at), micro(at)
	return s
}

func newDevice(t *testing.T, st store.Store, tenantID, subjectID, ownership string) store.Device {
	t.Helper()
	id := store.NewID()
	d := store.Device{ID: id, TenantID: tenantID, SubjectID: subjectID, Ownership: ownership, Platform: "ios",
		State: store.DeviceEnrolled, SerialIndex: []byte("serial-" + id), UDIDIndex: []byte("udid-" + id),
		KeyID: "dkey-" + id, EnrolledAt: at, LastSeenAt: at, CreatedAt: at, UpdatedAt: at, Compliance: store.ComplianceUnknown}
	tx(t, st, func(q store.Queries) error { return q.Devices().Create(context.Background(), d) })
	d.EnrolledAt, d.LastSeenAt, d.CreatedAt, d.UpdatedAt = micro(at), micro(at), micro(at), micro(at)
	return d
}

// value makes a current inventory value as the privacy gate would: personal
// fields carry a ciphertext, the others plaintext JSON.
func value(d store.Device, field, category string, personal bool, rev int) store.InventoryValue {
	v := store.InventoryValue{TenantID: d.TenantID, DeviceID: d.ID, Field: field, Category: category,
		SubjectID: d.SubjectID, Digest: fmt.Appendf(nil, "digest-%s-%d", field, rev), CollectedAt: micro(at)}
	if personal {
		v.Ciphertext, v.KeyID, v.Hidden = fmt.Appendf(nil, "ct-%s-%d", field, rev), d.KeyID, rev%2 == 1
	} else {
		v.Value = fmt.Appendf(nil, `"%s-%d"`, field, rev)
	}
	return v
}

// superseded turns a current value into the history row Put appends.
func superseded(v store.InventoryValue, expires time.Time) store.InventoryValue {
	v.ID, v.Digest, v.ExpiresAt = store.NewID(), nil, micro(expires)
	return v
}

func putInventory(t *testing.T, st store.Store, current, history []store.InventoryValue) {
	t.Helper()
	tx(t, st, func(q store.Queries) error { return q.Inventory().Put(context.Background(), current, history) })
}

func testSubjects(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	s1 := newSubject(t, st, tn.ID, []byte("idx-alice"))
	s2 := newSubject(t, st, tn.ID, nil)
	s3 := newSubject(t, st, tn.ID, nil) // several subjects without an e-mail index are fine
	foreign := newSubject(t, st, other.ID, []byte("idx-alice"))
	r := st.Read().Subjects()
	got, err := r.Get(ctx, tn.ID, s1.ID)
	must(t, err)
	if !reflect.DeepEqual(got, s1) {
		t.Fatalf("Get = %+v, want %+v", got, s1)
	}
	_, err = r.Get(ctx, other.ID, s1.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	if got, err := r.GetByEmailIndex(ctx, tn.ID, []byte("idx-alice")); err != nil || got.ID != s1.ID {
		t.Fatalf("GetByEmailIndex = %+v, %v; want %s", got, err, s1.ID)
	}
	if got, err := r.GetByEmailIndex(ctx, other.ID, []byte("idx-alice")); err != nil || got.ID != foreign.ID {
		t.Fatalf("GetByEmailIndex in the other tenant = %+v, %v; want %s", got, err, foreign.ID)
	}
	_, err = r.GetByEmailIndex(ctx, tn.ID, nil)
	wantErr(t, err, store.ErrNotFound, "GetByEmailIndex without an index")
	dup := store.Subject{ID: store.NewID(), TenantID: tn.ID, Pseudonym: "p", EmailIndex: []byte("idx-alice"),
		State: store.SubjectActive, CreatedAt: at, UpdatedAt: at}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Subjects().Create(ctx, dup) }),
		store.ErrConflict, "Create with a taken e-mail index")

	list, err := r.List(ctx, tn.ID, store.Page{})
	must(t, err)
	if len(list) != 3 || list[0].ID != s1.ID || list[1].ID != s2.ID || list[2].ID != s3.ID {
		t.Fatalf("List = %+v", list)
	}
	if page, err := r.List(ctx, tn.ID, store.Page{After: s1.ID, Limit: 1}); err != nil || len(page) != 1 || page[0].ID != s2.ID {
		t.Fatalf("List after cursor = %+v, %v", page, err)
	}

	// Erasure leaves the pseudonym only.
	erased := s1
	erased.EmailIndex, erased.Profile, erased.KeyID, erased.Locale = nil, nil, "", "en"
	erased.State, erased.UpdatedAt, erased.ErasedAt = store.SubjectErased, micro(at.Add(time.Hour)), micro(at.Add(time.Hour))
	tx(t, st, func(q store.Queries) error { return q.Subjects().Update(ctx, erased) })
	if got, err := r.Get(ctx, tn.ID, s1.ID); err != nil || !reflect.DeepEqual(got, erased) {
		t.Fatalf("after Update = %+v, %v; want %+v", got, err, erased)
	}
	// The freed index can be taken; taking a used one is a conflict that
	// leaves the transaction usable.
	s2.EmailIndex = []byte("idx-alice")
	tx(t, st, func(q store.Queries) error { return q.Subjects().Update(ctx, s2) })
	s3.EmailIndex = []byte("idx-alice")
	var taken error // checked outside: a test must not stop the SQLite writer goroutine
	tx(t, st, func(q store.Queries) error {
		taken = q.Subjects().Update(ctx, s3)
		s3.EmailIndex = []byte("idx-carol")
		return q.Subjects().Update(ctx, s3)
	})
	wantErr(t, taken, store.ErrConflict, "Update to a taken e-mail index")
	if got, err := r.GetByEmailIndex(ctx, tn.ID, []byte("idx-carol")); err != nil || got.ID != s3.ID {
		t.Fatalf("GetByEmailIndex after Update = %+v, %v", got, err)
	}
	moved := s2
	moved.TenantID = other.ID
	moved.EmailIndex = nil
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Subjects().Update(ctx, moved) }),
		store.ErrNotFound, "Update through another tenant")

	// Account names: an Apple account index is kept and read back; it may
	// be neither another person's e-mail nor their account, in either
	// direction, while the same names in another tenant are no conflict.
	s3.AppleIDIndex = []byte("idx-carol-apple")
	tx(t, st, func(q store.Queries) error { return q.Subjects().Update(ctx, s3) })
	if got, err := r.Get(ctx, tn.ID, s3.ID); err != nil || string(got.AppleIDIndex) != "idx-carol-apple" {
		t.Fatalf("the Apple account index read back: %q, %v", got.AppleIDIndex, err)
	}
	var asEmail, asAccount, newAsAccount, newAsEmail error
	tx(t, st, func(q store.Queries) error {
		taken := s2
		taken.AppleIDIndex = []byte("idx-carol") // s3's e-mail
		asEmail = q.Subjects().Update(ctx, taken)
		taken.AppleIDIndex = []byte("idx-carol-apple") // s3's account
		asAccount = q.Subjects().Update(ctx, taken)
		fresh := store.Subject{ID: store.NewID(), TenantID: tn.ID, Pseudonym: "p", EmailIndex: []byte("idx-dave"), AppleIDIndex: []byte("idx-carol-apple"),
			State: store.SubjectActive, CreatedAt: at, UpdatedAt: at}
		newAsAccount = q.Subjects().Create(ctx, fresh)
		fresh.ID, fresh.EmailIndex, fresh.AppleIDIndex = store.NewID(), []byte("idx-carol-apple"), nil
		newAsEmail = q.Subjects().Create(ctx, fresh)
		return nil
	})
	wantErr(t, asEmail, store.ErrConflict, "an Apple account that is another person's e-mail")
	wantErr(t, asAccount, store.ErrConflict, "an Apple account that is another person's account")
	wantErr(t, newAsAccount, store.ErrConflict, "a new person with another person's Apple account")
	wantErr(t, newAsEmail, store.ErrConflict, "a new person whose e-mail is another person's Apple account")
	elsewhere := newSubject(t, st, other.ID, []byte("idx-carol-apple"))
	if got, err := st.Read().Subjects().Get(ctx, other.ID, elsewhere.ID); err != nil || got.ID != elsewhere.ID {
		t.Fatalf("the same name in another tenant: %+v, %v", got, err)
	}
	s3.AppleIDIndex = nil // erasure clears it; the name is free again
	tx(t, st, func(q store.Queries) error { return q.Subjects().Update(ctx, s3) })
	s2.AppleIDIndex = []byte("idx-carol-apple")
	tx(t, st, func(q store.Queries) error { return q.Subjects().Update(ctx, s2) })
}

func testDevices(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	sub := newSubject(t, st, tn.ID, nil)
	d1 := newDevice(t, st, tn.ID, sub.ID, "corporate")
	d2 := newDevice(t, st, tn.ID, "", "byod")
	d3 := newDevice(t, st, tn.ID, sub.ID, "byod")
	foreign := newDevice(t, st, other.ID, sub.ID, "corporate")
	r := st.Read().Devices()
	got, err := r.Get(ctx, tn.ID, d1.ID)
	must(t, err)
	if !reflect.DeepEqual(got, d1) {
		t.Fatalf("Get = %+v, want %+v", got, d1)
	}
	_, err = r.Get(ctx, other.ID, d1.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Devices().Create(ctx, d1) }),
		store.ErrConflict, "Create with a used ID")

	// GetMany: unknown and foreign IDs are absent; repeats and lists longer
	// than one IN list are fine.
	many := []string{d3.ID, "no-such-device", foreign.ID, d1.ID, d1.ID}
	for len(many) < 1200 {
		many = append(many, fmt.Sprintf("missing-%04d", len(many)))
	}
	many = append(many, d2.ID)
	byID, err := r.GetMany(ctx, tn.ID, many)
	must(t, err)
	if len(byID) != 3 || !reflect.DeepEqual(byID[d1.ID], d1) || !reflect.DeepEqual(byID[d2.ID], d2) || !reflect.DeepEqual(byID[d3.ID], d3) {
		t.Fatalf("GetMany = %d devices %v; want d1, d2, d3", len(byID), byID)
	}
	if byID, err := r.GetMany(ctx, tn.ID, nil); err != nil || len(byID) != 0 {
		t.Fatalf("GetMany(nil) = %v, %v", byID, err)
	}

	ids := func(ds []store.Device, err error) []string {
		t.Helper()
		must(t, err)
		out := []string{}
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    store.DeviceFilter
		want []string
	}{
		{"all", store.DeviceFilter{}, []string{d1.ID, d2.ID, d3.ID}},
		{"by subject", store.DeviceFilter{SubjectID: sub.ID}, []string{d1.ID, d3.ID}},
		{"by serial", store.DeviceFilter{SerialIndex: d2.SerialIndex}, []string{d2.ID}},
		{"by subject and serial", store.DeviceFilter{SubjectID: sub.ID, SerialIndex: d2.SerialIndex}, []string{}},
		{"foreign serial", store.DeviceFilter{SerialIndex: foreign.SerialIndex}, []string{}},
		{"page", store.DeviceFilter{Page: store.Page{After: d1.ID, Limit: 1}}, []string{d2.ID}},
	} {
		if got := ids(r.List(ctx, tn.ID, c.f)); !reflect.DeepEqual(got, c.want) {
			t.Fatalf("List %s = %v, want %v", c.name, got, c.want)
		}
	}

	d2.SubjectID, d2.Ownership, d2.Platform, d2.State = sub.ID, "corporate", "macos", store.DeviceDeprovisioned
	d2.SerialIndex, d2.UDIDIndex, d2.KeyID = []byte("serial-new"), nil, "dkey-new"
	d2.EnrolledAt, d2.LastSeenAt = micro(at.Add(time.Minute)), micro(at.Add(2*time.Minute))
	d2.DeprovisionedAt, d2.UpdatedAt = micro(at.Add(time.Hour)), micro(at.Add(time.Hour))
	tx(t, st, func(q store.Queries) error { return q.Devices().Update(ctx, d2) })
	if got, err := r.Get(ctx, tn.ID, d2.ID); err != nil || !reflect.DeepEqual(got, d2) {
		t.Fatalf("after Update = %+v, %v; want %+v", got, err, d2)
	}
	moved := d2
	moved.TenantID = other.ID
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Devices().Update(ctx, moved) }),
		store.ErrNotFound, "Update through another tenant")

	later, earlier := at.Add(time.Hour), at.Add(-time.Hour)
	must(t, st.Read().Devices().Touch(ctx, tn.ID, d1.ID, later))
	must(t, st.Read().Devices().Touch(ctx, tn.ID, d1.ID, earlier)) // out of order: ignored
	if got, err := r.Get(ctx, tn.ID, d1.ID); err != nil || !got.LastSeenAt.Equal(micro(later)) {
		t.Fatalf("LastSeenAt after Touch = %v, %v; want %v", got.LastSeenAt, err, micro(later))
	}
	wantErr(t, st.Read().Devices().Touch(ctx, other.ID, d1.ID, later), store.ErrNotFound, "Touch through another tenant")
}

func testInventoryPut(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	sub := newSubject(t, st, tn.ID, nil)
	d := newDevice(t, st, tn.ID, sub.ID, "corporate")
	foreign := newDevice(t, st, other.ID, "", "corporate")

	// 101 fields exercise several chunk sizes of the multi-row statements.
	var first []store.InventoryValue
	for i := range 101 {
		first = append(first, value(d, fmt.Sprintf("f.%03d", i), "hardware", i%3 == 0, 0))
	}
	first[5].ExpiresAt = micro(at.Add(24 * time.Hour))
	putInventory(t, st, first, nil)
	putInventory(t, st, []store.InventoryValue{value(foreign, "f.000", "hardware", false, 9)}, nil)
	r := st.Read().Inventory()
	cur, err := r.Current(ctx, tn.ID, d.ID)
	must(t, err)
	if !reflect.DeepEqual(cur, first) {
		t.Fatalf("Current after first Put: got %d values, want %d equal to what was put", len(cur), len(first))
	}
	if cur, err := r.Current(ctx, other.ID, d.ID); err != nil || len(cur) != 0 {
		t.Fatalf("Current through another tenant = %d values, %v", len(cur), err)
	}
	// CurrentOf: the named fields of that device only, by field; a name
	// without a value is left out. Three names pad the IN list to four.
	some, err := r.CurrentOf(ctx, tn.ID, d.ID, []string{"f.100", "no-such-field", "f.005"})
	must(t, err)
	if !reflect.DeepEqual(some, []store.InventoryValue{first[5], first[100]}) {
		t.Fatalf("CurrentOf(f.100, no-such-field, f.005) = %+v", some)
	}
	if some, err := r.CurrentOf(ctx, other.ID, d.ID, []string{"f.000"}); err != nil || len(some) != 0 {
		t.Fatalf("CurrentOf through another tenant = %d values, %v", len(some), err)
	}

	// Two fields change: the old values go to history, the new replace them.
	// f.002 is named twice in one Put: the last value wins on both engines.
	changed := []store.InventoryValue{value(d, "f.001", "hardware", false, 1), value(d, "f.002", "hardware", false, 1),
		value(d, "f.003", "hardware", true, 1), value(d, "f.002", "hardware", false, 2)}
	for i := range changed {
		changed[i].CollectedAt = micro(at.Add(time.Hour))
	}
	older := superseded(first[1], at.Add(30*24*time.Hour))
	old := []store.InventoryValue{older, superseded(first[3], at.Add(30*24*time.Hour))}
	putInventory(t, st, changed, old)
	cur, err = r.Current(ctx, tn.ID, d.ID)
	must(t, err)
	want := append([]store.InventoryValue{}, first...)
	want[1], want[2], want[3] = changed[0], changed[3], changed[2]
	if !reflect.DeepEqual(cur, want) {
		t.Fatalf("Current after upsert: f.001..f.003 = %+v, want %+v", cur[1:4], want[1:4])
	}
	// Refresh moves only the times of the named fields of that device,
	// through more than one IN list.
	later, expires := micro(at.Add(2*time.Hour)), micro(at.Add(48*time.Hour))
	fields := []string{"f.004", "f.099", "f.100"}
	for len(fields) < 700 {
		fields = append(fields, fmt.Sprintf("no-such-field-%d", len(fields)))
	}
	tx(t, st, func(q store.Queries) error {
		return errors.Join(q.Inventory().Refresh(ctx, tn.ID, d.ID, fields, later, expires),
			q.Inventory().Refresh(ctx, tn.ID, foreign.ID, []string{"f.000"}, later, expires))
	})
	for _, i := range []int{4, 99, 100} {
		want[i].CollectedAt, want[i].ExpiresAt = later, expires
	}
	if cur, err = r.Current(ctx, tn.ID, d.ID); err != nil || !reflect.DeepEqual(cur, want) {
		t.Fatalf("Current after Refresh: f.004 = %+v, f.005 = %+v; err %v", cur[4], cur[5], err)
	}
	if cur, err := r.Current(ctx, other.ID, foreign.ID); err != nil || !cur[0].CollectedAt.Equal(micro(at)) {
		t.Fatalf("Refresh through another tenant moved its value: %+v, %v", cur, err)
	}

	// A later superseded value of f.001 sorts first: history is newest first.
	newer := superseded(changed[0], at.Add(30*24*time.Hour))
	putInventory(t, st, nil, []store.InventoryValue{newer})
	hist, err := r.History(ctx, tn.ID, d.ID, 0)
	must(t, err)
	if len(hist) != 3 || !reflect.DeepEqual(hist[0], newer) || hist[1].Field != "f.001" && hist[2].Field != "f.001" {
		t.Fatalf("History = %+v", hist)
	}
	if hist, err := r.History(ctx, tn.ID, d.ID, 1); err != nil || len(hist) != 1 || hist[0].ID != newer.ID {
		t.Fatalf("History limit 1 = %+v, %v", hist, err)
	}
	if hist, err := r.History(ctx, other.ID, d.ID, 0); err != nil || len(hist) != 0 {
		t.Fatalf("History through another tenant = %+v, %v", hist, err)
	}

	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Inventory().Put(ctx, nil, []store.InventoryValue{newer}) }),
		store.ErrConflict, "Put of a history row with a used ID")
	both := value(d, "f.900", "hardware", true, 0)
	both.Value = []byte(`"plain"`)
	neither := value(d, "f.901", "hardware", false, 0)
	neither.Value = nil
	for name, bad := range map[string]store.InventoryValue{"both value and ciphertext": both, "neither": neither} {
		if err := st.Tx(ctx, func(q store.Queries) error { return q.Inventory().Put(ctx, []store.InventoryValue{bad}, nil) }); err == nil {
			t.Fatalf("Put of a value with %s succeeded", name)
		}
	}

	all, err := r.ForSubject(ctx, tn.ID, sub.ID)
	must(t, err)
	if len(all) != 101+3 || all[0].ID != "" || all[101].ID == "" {
		t.Fatalf("ForSubject = %d values (first ID %q), want 101 current then 3 history", len(all), all[0].ID)
	}
	if got, err := r.ForSubject(ctx, other.ID, sub.ID); err != nil || len(got) != 0 {
		t.Fatalf("ForSubject through another tenant = %d values, %v", len(got), err)
	}
	if _, err := r.ForSubject(ctx, tn.ID, ""); err == nil {
		t.Fatal("ForSubject with no subject succeeded")
	}
}

func testInventoryFieldValues(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	var devices []store.Device
	for range 3 {
		d := newDevice(t, st, tn.ID, "", "corporate")
		devices = append(devices, d)
		putInventory(t, st, []store.InventoryValue{value(d, "apps.installed", "installed_apps", true, 1), value(d, "os.version", "os", false, 1)}, nil)
	}
	foreign := newDevice(t, st, other.ID, "", "corporate")
	putInventory(t, st, []store.InventoryValue{value(foreign, "apps.installed", "installed_apps", true, 1)}, nil)
	slices.SortFunc(devices, func(a, b store.Device) int { return strings.Compare(a.ID, b.ID) })
	r := st.Read().Inventory()
	page, err := r.FieldValues(ctx, tn.ID, "apps.installed", "", 2)
	must(t, err)
	if len(page) != 2 || page[0].DeviceID != devices[0].ID || page[1].DeviceID != devices[1].ID || page[0].Field != "apps.installed" {
		t.Fatalf("first page: %+v", page)
	}
	page, err = r.FieldValues(ctx, tn.ID, "apps.installed", page[1].DeviceID, 2)
	must(t, err)
	if len(page) != 1 || page[0].DeviceID != devices[2].ID || page[0].Ciphertext == nil {
		t.Fatalf("second page (the other tenant's value must not appear): %+v", page)
	}
}

// testInventoryHiddenValues: which devices' current value of a field was
// stored hidden, among given IDs and among a group's members, per class.
func testInventoryHiddenValues(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	hiddenApps := func(d store.Device, hidden bool) store.InventoryValue {
		v := value(d, "apps.installed", "installed_apps", true, 1)
		v.Hidden = hidden
		return v
	}
	shownPhone, hiddenPhone := newDevice(t, st, tn.ID, "", "personal"), newDevice(t, st, tn.ID, "", "personal")
	hiddenLaptop, noApps := newDevice(t, st, tn.ID, "", "corporate"), newDevice(t, st, tn.ID, "", "corporate")
	foreign := newDevice(t, st, other.ID, "", "personal")
	os := value(noApps, "os.version", "os", false, 1)
	os.Hidden = true // another field hidden says nothing of the apps
	putInventory(t, st, []store.InventoryValue{hiddenApps(shownPhone, false), hiddenApps(hiddenPhone, true),
		hiddenApps(hiddenLaptop, true), os, hiddenApps(foreign, true)}, nil)

	got, err := st.Read().Inventory().HiddenOf(ctx, tn.ID, "apps.installed",
		[]string{shownPhone.ID, hiddenPhone.ID, noApps.ID, foreign.ID, "no-such-device", hiddenPhone.ID})
	must(t, err)
	if len(got) != 1 || !got[hiddenPhone.ID] {
		t.Errorf("HiddenOf: %v, want only %s (the other tenant's device and unlisted IDs never)", got, hiddenPhone.ID)
	}
	if got, err = st.Read().Inventory().HiddenOf(ctx, tn.ID, "apps.installed", nil); err != nil || len(got) != 0 {
		t.Errorf("HiddenOf of no IDs: %v, %v", got, err)
	}

	g := newGroup(t, st, tn.ID, "Has an app")
	tx(t, st, func(q store.Queries) error {
		_, err := q.Groups().AddMembers(ctx, tn.ID, g.ID, []string{shownPhone.ID, hiddenPhone.ID, hiddenLaptop.ID, noApps.ID}, at)
		return err
	})
	classes, err := st.Read().Groups().HiddenMemberClasses(ctx, tn.ID, g.ID, "apps.installed")
	must(t, err)
	if len(classes) != 2 || classes["personal"] != 1 || classes["corporate"] != 1 {
		t.Errorf("HiddenMemberClasses: %v, want one personal and one corporate member", classes)
	}
}

func testInventoryDeletes(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	corp, byod := newDevice(t, st, tn.ID, "", "corporate"), newDevice(t, st, tn.ID, "", "byod")
	gone := newDevice(t, st, tn.ID, "", "byod")
	foreign := newDevice(t, st, other.ID, "", "byod")
	for _, d := range []store.Device{corp, byod, gone, foreign} {
		loc, apps := value(d, "location.coordinates", "location", true, 1), value(d, "apps.installed", "apps", true, 1)
		putInventory(t, st, []store.InventoryValue{loc, apps},
			[]store.InventoryValue{superseded(value(d, "location.coordinates", "location", true, 0), at.Add(time.Hour))})
	}
	var n int
	run := func(fn func(q store.Queries) (int, error)) int {
		t.Helper()
		tx(t, st, func(q store.Queries) error {
			var err error
			n, err = fn(q)
			return err
		})
		return n
	}
	if n := run(func(q store.Queries) (int, error) { return q.Inventory().DeleteDevice(ctx, tn.ID, gone.ID) }); n != 3 {
		t.Fatalf("DeleteDevice removed %d rows, want 3 (2 current, 1 history)", n)
	}
	if n := run(func(q store.Queries) (int, error) { return q.Inventory().DeleteDevice(ctx, other.ID, corp.ID) }); n != 0 {
		t.Fatalf("DeleteDevice through another tenant removed %d rows", n)
	}
	// Location of BYOD devices: byod's current and history rows only.
	if n := run(func(q store.Queries) (int, error) {
		return q.Inventory().DeleteCategory(ctx, tn.ID, "byod", "location")
	}); n != 2 {
		t.Fatalf("DeleteCategory removed %d rows, want 2", n)
	}
	count := func(tenantID string, d store.Device) (int, int) {
		t.Helper()
		cur, err := st.Read().Inventory().Current(ctx, tenantID, d.ID)
		must(t, err)
		hist, err := st.Read().Inventory().History(ctx, tenantID, d.ID, 0)
		must(t, err)
		return len(cur), len(hist)
	}
	for _, c := range []struct {
		d         store.Device
		cur, hist int
		why       string
	}{
		{gone, 0, 0, "deleted device"}, {byod, 1, 0, "byod: apps stay"},
		{corp, 2, 1, "corporate: other ownership"}, {foreign, 2, 1, "other tenant"},
	} {
		if cur, hist := count(c.d.TenantID, c.d); cur != c.cur || hist != c.hist {
			t.Fatalf("%s: %d current, %d history; want %d, %d", c.why, cur, hist, c.cur, c.hist)
		}
	}
	if n := run(func(q store.Queries) (int, error) { return q.Inventory().DeleteByKey(ctx, tn.ID, corp.KeyID) }); n != 3 {
		t.Fatalf("DeleteByKey removed %d rows, want 3", n)
	}
	if cur, hist := count(other.ID, foreign); cur != 2 || hist != 1 {
		t.Fatalf("other tenant after DeleteByKey: %d current, %d history", cur, hist)
	}
	if err := st.Tx(ctx, func(q store.Queries) error { _, err := q.Inventory().DeleteByKey(ctx, tn.ID, ""); return err }); err == nil {
		t.Fatal("DeleteByKey with no key succeeded")
	}
}

func testInventoryRetention(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	d, foreign := newDevice(t, st, tn.ID, "", "corporate"), newDevice(t, st, other.ID, "", "corporate")
	for _, dev := range []store.Device{d, foreign} {
		loc, os := value(dev, "location.coordinates", "location", true, 1), value(dev, "os.version", "os", false, 1)
		loc.CollectedAt = micro(at.Add(time.Hour))
		hist := superseded(value(dev, "location.coordinates", "location", true, 0), at.Add(90*24*time.Hour))
		putInventory(t, st, []store.InventoryValue{loc, os}, []store.InventoryValue{hist})
	}
	tx(t, st, func(q store.Queries) error {
		return q.Inventory().ShortenRetention(ctx, tn.ID, "location", 7*24*time.Hour)
	})
	check := func(dev store.Device, wantLoc, wantOS, wantHist time.Time) {
		t.Helper()
		cur, err := st.Read().Inventory().Current(ctx, dev.TenantID, dev.ID)
		must(t, err)
		hist, err := st.Read().Inventory().History(ctx, dev.TenantID, dev.ID, 0)
		must(t, err)
		if len(cur) != 2 || len(hist) != 1 || !cur[0].ExpiresAt.Equal(wantLoc) || !cur[1].ExpiresAt.Equal(wantOS) ||
			!hist[0].ExpiresAt.Equal(wantHist) {
			t.Fatalf("expiries: current %+v, history %+v; want location %v, os %v, history %v", cur, hist, wantLoc, wantOS, wantHist)
		}
	}
	week := 7 * 24 * time.Hour
	check(d, micro(at.Add(time.Hour+week)), time.Time{}, micro(at.Add(week)))
	check(foreign, time.Time{}, time.Time{}, micro(at.Add(90*24*time.Hour)))
	// A longer period extends nothing; a shorter one cuts again.
	tx(t, st, func(q store.Queries) error {
		return q.Inventory().ShortenRetention(ctx, tn.ID, "location", 30*24*time.Hour)
	})
	check(d, micro(at.Add(time.Hour+week)), time.Time{}, micro(at.Add(week)))
	tx(t, st, func(q store.Queries) error {
		return q.Inventory().ShortenRetention(ctx, tn.ID, "location", 2*24*time.Hour)
	})
	check(d, micro(at.Add(time.Hour+48*time.Hour)), time.Time{}, micro(at.Add(48*time.Hour)))
	if err := st.Tx(ctx, func(q store.Queries) error { return q.Inventory().ShortenRetention(ctx, tn.ID, "location", 0) }); err == nil {
		t.Error("a retention of no period was accepted")
	}
}

func testInventoryPurge(t *testing.T, st store.Store) {
	ctx := context.Background()
	t1, t2 := newTenant(t, st, ""), newTenant(t, st, "")
	now := at.Add(10 * 24 * time.Hour)
	expired, fresh := now.Add(-time.Hour), now.Add(time.Hour)
	want := map[string]int{}
	var survivors int
	for i, tn := range []store.Tenant{t1, t2} {
		d := newDevice(t, st, tn.ID, "", "corporate")
		var cur, hist []store.InventoryValue
		for j := range 3 + i {
			loc := value(d, fmt.Sprintf("location.%d", j), "location", true, 1)
			loc.ExpiresAt = expired
			cur = append(cur, loc)
			hist = append(hist, superseded(value(d, "apps.installed", "apps", true, j), expired))
		}
		want[tn.ID+"/location"], want[tn.ID+"/apps"] = 3+i, 3+i
		exact := value(d, "location.exact", "location", true, 1) // expiry == now: purged too
		exact.ExpiresAt = micro(now)
		want[tn.ID+"/location"]++
		keep := value(d, "location.fresh", "location", true, 1)
		keep.ExpiresAt = fresh
		enrolled := value(d, "os.version", "os", false, 1) // expires_at 0: kept while enrolled
		cur = append(cur, exact, keep, enrolled)
		hist = append(hist, superseded(value(d, "os.version", "os", false, 0), fresh))
		survivors += 3
		putInventory(t, st, cur, hist)
	}
	got := map[string]int{}
	batches := 0
	for {
		var purged store.InventoryPurge
		var err error
		if batches%2 == 0 {
			tx(t, st, func(q store.Queries) error {
				purged, err = q.Inventory().PurgeExpired(ctx, now, 4)
				return err
			})
		} else { // outside a transaction it must work too
			purged, err = st.Read().Inventory().PurgeExpired(ctx, now, 4)
			must(t, err)
		}
		rows := 0
		for _, c := range purged.Counts {
			got[c.TenantID+"/"+c.Category] += c.Rows
			rows += c.Rows
		}
		if rows > 4 {
			t.Fatalf("a purge batch with limit 4 removed %d rows", rows)
		}
		if rows == 0 {
			break
		}
		if batches++; batches > 20 {
			t.Fatal("PurgeExpired never finished")
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("purged %v, want %v", got, want)
	}
	if batches != 4 { // 7 history and 9 current rows, 4 at a time
		t.Fatalf("purge took %d batches, want 4", batches)
	}
	left := 0
	for _, tn := range []store.Tenant{t1, t2} {
		ds, err := st.Read().Devices().List(ctx, tn.ID, store.DeviceFilter{})
		must(t, err)
		cur, err := st.Read().Inventory().Current(ctx, tn.ID, ds[0].ID)
		must(t, err)
		hist, err := st.Read().Inventory().History(ctx, tn.ID, ds[0].ID, 0)
		must(t, err)
		left += len(cur) + len(hist)
	}
	if left != survivors {
		t.Fatalf("%d rows survived the purge, want %d", left, survivors)
	}
}

// testInventoryPurgeNamesDevices: a purge names, by tenant, the devices
// that lost a current value, and no device that lost only history.
func testInventoryPurgeNamesDevices(t *testing.T, st store.Store) {
	ctx := context.Background()
	t1, t2 := newTenant(t, st, ""), newTenant(t, st, "")
	now := at.Add(10 * 24 * time.Hour)
	expiring := func(d store.Device, field, category string, expires time.Time) store.InventoryValue {
		v := value(d, field, category, false, 1)
		v.ExpiresAt = micro(expires)
		return v
	}
	lostOne := newDevice(t, st, t1.ID, "", "corporate")
	lostHistory := newDevice(t, st, t1.ID, "", "corporate")
	kept := newDevice(t, st, t1.ID, "", "corporate")
	elsewhere := newDevice(t, st, t2.ID, "", "corporate")
	putInventory(t, st, []store.InventoryValue{
		expiring(lostOne, "os.version", "os", now.Add(-time.Hour)),
		expiring(lostOne, "hardware.model", "hardware", now.Add(-time.Hour)),
		expiring(lostHistory, "os.version", "os", now.Add(time.Hour)),
		expiring(kept, "os.version", "os", now.Add(time.Hour)),
		expiring(elsewhere, "os.version", "os", now.Add(-time.Hour)),
	}, []store.InventoryValue{superseded(value(lostHistory, "os.version", "os", false, 0), now.Add(-time.Hour))})
	var purged store.InventoryPurge
	tx(t, st, func(q store.Queries) error {
		var err error
		purged, err = q.Inventory().PurgeExpired(ctx, now, 100)
		return err
	})
	want := map[string][]string{t1.ID: {lostOne.ID}, t2.ID: {elsewhere.ID}}
	if !reflect.DeepEqual(purged.Devices, want) {
		t.Fatalf("purge named devices %v, want %v", purged.Devices, want)
	}
	again, err := st.Read().Inventory().PurgeExpired(ctx, now, 100)
	must(t, err)
	if len(again.Counts) != 0 || len(again.Devices) != 0 {
		t.Fatalf("a purge with nothing left to remove: %+v", again)
	}
}

// testInventoryHideCategory: hiding a category marks its current and
// historical values on the tenant's devices of one ownership class, and no
// other category, class or tenant.
func testInventoryHideCategory(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	corp, byod := newDevice(t, st, tn.ID, "", "corporate"), newDevice(t, st, tn.ID, "", "byod")
	foreign := newDevice(t, st, other.ID, "", "byod")
	for _, d := range []store.Device{corp, byod, foreign} {
		putInventory(t, st, []store.InventoryValue{value(d, "os.version", "os", false, 1), value(d, "hardware.model", "hardware", false, 1)},
			[]store.InventoryValue{superseded(value(d, "os.version", "os", false, 0), at.Add(time.Hour))})
	}
	hide := func(tenantID string) int {
		t.Helper()
		var n int
		tx(t, st, func(q store.Queries) error {
			var err error
			n, err = q.Inventory().HideCategory(ctx, tenantID, "byod", "os")
			return err
		})
		return n
	}
	if n := hide(tn.ID); n != 2 {
		t.Fatalf("HideCategory changed %d rows, want 2 (1 current, 1 history)", n)
	}
	if n := hide(tn.ID); n != 0 {
		t.Fatalf("HideCategory again changed %d rows, want none", n)
	}
	hidden := func(d store.Device) map[string]bool {
		t.Helper()
		out := map[string]bool{}
		cur, err := st.Read().Inventory().Current(ctx, d.TenantID, d.ID)
		must(t, err)
		for _, v := range cur {
			out[v.Field] = v.Hidden
		}
		hist, err := st.Read().Inventory().History(ctx, d.TenantID, d.ID, 0)
		must(t, err)
		for _, v := range hist {
			out["history:"+v.Field] = v.Hidden
		}
		return out
	}
	shown := map[string]bool{"os.version": false, "hardware.model": false, "history:os.version": false}
	for _, c := range []struct {
		d    store.Device
		want map[string]bool
		why  string
	}{
		{byod, map[string]bool{"os.version": true, "hardware.model": false, "history:os.version": true}, "byod: os hidden, hardware not"},
		{corp, shown, "corporate: other ownership"},
		{foreign, shown, "other tenant"},
	} {
		if got := hidden(c.d); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: hidden %v, want %v", c.why, got, c.want)
		}
	}
}

// testDeviceIdentifierIndexes: clearing the identifier indexes of a class
// leaves its devices unfindable by serial number, and other classes and
// tenants as they were.
func testDeviceIdentifierIndexes(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	corp, byod := newDevice(t, st, tn.ID, "", "corporate"), newDevice(t, st, tn.ID, "", "byod")
	unindexed := newDevice(t, st, tn.ID, "", "corporate")
	unindexed.SerialIndex, unindexed.UDIDIndex = nil, nil
	tx(t, st, func(q store.Queries) error { return q.Devices().Update(ctx, unindexed) })
	foreign := newDevice(t, st, other.ID, "", "corporate")
	clearCorporate := func() int {
		t.Helper()
		var n int
		tx(t, st, func(q store.Queries) error {
			var err error
			n, err = q.Devices().ClearIdentifierIndexes(ctx, tn.ID, "corporate")
			return err
		})
		return n
	}
	if n := clearCorporate(); n != 1 {
		t.Fatalf("ClearIdentifierIndexes counted %d devices, want 1 (the other had none)", n)
	}
	if n := clearCorporate(); n != 0 {
		t.Fatalf("ClearIdentifierIndexes again counted %d devices, want none", n)
	}
	r := st.Read().Devices()
	for _, c := range []struct {
		d       store.Device
		indexed bool
		why     string
	}{{corp, false, "corporate"}, {byod, true, "byod: other ownership"}, {foreign, true, "other tenant"}} {
		got, err := r.Get(ctx, c.d.TenantID, c.d.ID)
		must(t, err)
		if indexed := got.SerialIndex != nil && got.UDIDIndex != nil; indexed != c.indexed {
			t.Errorf("%s: serial index %q, UDID index %q; want indexed %v", c.why, got.SerialIndex, got.UDIDIndex, c.indexed)
		}
		found, err := r.List(ctx, c.d.TenantID, store.DeviceFilter{SerialIndex: c.d.SerialIndex})
		must(t, err)
		if (len(found) == 1) != c.indexed {
			t.Errorf("%s: found by its old serial index: %d devices", c.why, len(found))
		}
	}
}

func testKeysets(t *testing.T, st store.Store) {
	ctx := context.Background()
	t1, t2 := newTenant(t, st, ""), newTenant(t, st, "")
	r := st.Read().Keys()
	_, err := r.GetKeyset(ctx, t1.ID)
	wantErr(t, err, store.ErrNotFound, "GetKeyset before creation")
	k1 := store.TenantKeyset{TenantID: t1.ID, AEADKeyset: []byte("aead-1"), IndexKeyset: []byte("index-1"),
		MasterKeyID: "master-1", CreatedAt: micro(at), RotatedAt: micro(at)}
	k2 := k1
	k2.TenantID = t2.ID
	var created, again bool
	tx(t, st, func(q store.Queries) error {
		var err error
		if created, err = q.Keys().CreateKeyset(ctx, k1); err != nil {
			return err
		}
		other := k1
		other.AEADKeyset = []byte("racing node")
		if again, err = q.Keys().CreateKeyset(ctx, other); err != nil {
			return err
		}
		_, err = q.Keys().CreateKeyset(ctx, k2)
		return err
	})
	if !created || again {
		t.Fatalf("CreateKeyset twice = %v, %v; want true, false", created, again)
	}
	if got, err := r.GetKeyset(ctx, t1.ID); err != nil || !reflect.DeepEqual(got, k1) {
		t.Fatalf("GetKeyset = %+v, %v; want %+v", got, err, k1)
	}
	// SwapKeyset writes only over the keyset it was given.
	k1.AEADKeyset, k1.IndexKeyset, k1.MasterKeyID, k1.RotatedAt = []byte("aead-2"), []byte("index-2"), "master-2", micro(at.Add(time.Hour))
	stale := k1
	stale.AEADKeyset = []byte("a rotation that lost")
	var swapped, lost, missing bool
	tx(t, st, func(q store.Queries) error {
		var err error
		if swapped, err = q.Keys().SwapKeyset(ctx, []byte("aead-1"), k1); err != nil {
			return err
		}
		if lost, err = q.Keys().SwapKeyset(ctx, []byte("aead-1"), stale); err != nil {
			return err
		}
		nobody := k1
		nobody.TenantID = store.NewID()
		missing, err = q.Keys().SwapKeyset(ctx, []byte("aead-1"), nobody)
		return err
	})
	if !swapped || lost || missing {
		t.Fatalf("SwapKeyset over the stored keyset = %v, over one replaced meanwhile = %v, of a tenant without one = %v; want true, false, false",
			swapped, lost, missing)
	}
	all, err := r.ListKeysets(ctx, store.Page{})
	must(t, err)
	wantAll := []store.TenantKeyset{k1, k2}
	if t2.ID < t1.ID {
		wantAll = []store.TenantKeyset{k2, k1}
	}
	if !reflect.DeepEqual(all, wantAll) {
		t.Fatalf("ListKeysets = %+v, want %+v", all, wantAll)
	}
	if rest, err := r.ListKeysets(ctx, store.Page{After: wantAll[0].TenantID, Limit: 5}); err != nil || !reflect.DeepEqual(rest, wantAll[1:]) {
		t.Fatalf("ListKeysets after the first = %+v, %v; want %+v", rest, err, wantAll[1:])
	}

}

func testDataKeys(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	owner := "device:" + store.NewID()
	mk := func(tenantID string) store.DataKey {
		return store.DataKey{ID: store.NewID(), TenantID: tenantID, Owner: owner, Wrapped: []byte("wrapped-" + owner),
			CreatedAt: micro(at)}
	}
	create := func(k store.DataKey) bool {
		t.Helper()
		var ok bool
		tx(t, st, func(q store.Queries) error {
			var err error
			ok, err = q.Keys().CreateDataKey(ctx, k)
			return err
		})
		return ok
	}
	k1, k2, foreign := mk(tn.ID), mk(tn.ID), mk(other.ID)
	if !create(k1) || create(k2) || !create(foreign) {
		t.Fatal("CreateDataKey: want the first live key per owner and tenant created, the second refused")
	}
	r := st.Read().Keys()
	if got, err := r.GetDataKey(ctx, tn.ID, k1.ID); err != nil || !reflect.DeepEqual(got, k1) {
		t.Fatalf("GetDataKey = %+v, %v; want %+v", got, err, k1)
	}
	_, err := r.GetDataKey(ctx, other.ID, k1.ID)
	wantErr(t, err, store.ErrNotFound, "GetDataKey from another tenant")
	if got, err := r.DataKeyByOwner(ctx, tn.ID, owner); err != nil || got.ID != k1.ID {
		t.Fatalf("DataKeyByOwner = %+v, %v; want %s", got, err, k1.ID)
	}
	_, err = r.DataKeyByOwner(ctx, tn.ID, "device:unknown")
	wantErr(t, err, store.ErrNotFound, "DataKeyByOwner of an owner without keys")

	k1.Wrapped, k1.SubjectID = []byte("rewrapped"), "subject-1"
	tx(t, st, func(q store.Queries) error {
		if err := q.Keys().Rewrap(ctx, tn.ID, k1.ID, k1.Wrapped); err != nil {
			return err
		}
		return q.Keys().SetKeySubject(ctx, tn.ID, k1.ID, k1.SubjectID)
	})
	if got, err := r.GetDataKey(ctx, tn.ID, k1.ID); err != nil || !reflect.DeepEqual(got, k1) {
		t.Fatalf("after Rewrap and SetKeySubject = %+v, %v; want %+v", got, err, k1)
	}
	for name, fn := range map[string]func(q store.Queries) error{
		"Rewrap through another tenant":        func(q store.Queries) error { return q.Keys().Rewrap(ctx, other.ID, k1.ID, []byte("x")) },
		"SetKeySubject through another tenant": func(q store.Queries) error { return q.Keys().SetKeySubject(ctx, other.ID, k1.ID, "s") },
		"Destroy through another tenant":       func(q store.Queries) error { return q.Keys().Destroy(ctx, other.ID, k1.ID, at, "") },
		"Destroy missing": func(q store.Queries) error {
			return q.Keys().Destroy(ctx, tn.ID, store.NewID(), at, "")
		},
	} {
		wantErr(t, st.Tx(ctx, fn), store.ErrNotFound, name)
	}

	// Destroyed: no material, first destruction time kept, no rewrap.
	destroyed := micro(at.Add(time.Hour))
	tx(t, st, func(q store.Queries) error {
		return q.Keys().Destroy(ctx, tn.ID, k1.ID, destroyed, store.KeyDestroyedForDeparture)
	})
	tx(t, st, func(q store.Queries) error { return q.Keys().Destroy(ctx, tn.ID, k1.ID, destroyed.Add(time.Hour), "") })
	if got, err := r.GetDataKey(ctx, tn.ID, k1.ID); err != nil || got.Wrapped != nil || !got.DestroyedAt.Equal(destroyed) ||
		got.DestroyedFor != store.KeyDestroyedForDeparture {
		t.Fatalf("after Destroy = %+v, %v; want the first destruction's time and reason", got, err)
	}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Keys().Rewrap(ctx, tn.ID, k1.ID, []byte("back")) }),
		store.ErrNotFound, "Rewrap of a destroyed key")
	if got, err := r.DataKeyByOwner(ctx, tn.ID, owner); err != nil || got.ID != k1.ID {
		t.Fatalf("DataKeyByOwner with only a destroyed key = %+v, %v", got, err)
	}
	// After erasure the owner gets a new key; it is the one found by owner.
	k3 := mk(tn.ID)
	if !create(k3) {
		t.Fatal("CreateDataKey after the live key was destroyed refused")
	}
	if got, err := r.DataKeyByOwner(ctx, tn.ID, owner); err != nil || got.ID != k3.ID {
		t.Fatalf("DataKeyByOwner with a new live key = %+v, %v; want %s", got, err, k3.ID)
	}
	tx(t, st, func(q store.Queries) error {
		return q.Keys().Destroy(ctx, tn.ID, k3.ID, destroyed.Add(2*time.Hour), "")
	})
	if got, err := r.DataKeyByOwner(ctx, tn.ID, owner); err != nil || got.ID != k3.ID {
		t.Fatalf("DataKeyByOwner = %+v, %v; want the most recently destroyed %s", got, err, k3.ID)
	}
	// A departure after an erasure is recorded; the time stays the first.
	tx(t, st, func(q store.Queries) error {
		return q.Keys().Destroy(ctx, tn.ID, k3.ID, destroyed.Add(3*time.Hour), store.KeyDestroyedForDeparture)
	})
	if got, err := r.GetDataKey(ctx, tn.ID, k3.ID); err != nil || got.DestroyedFor != store.KeyDestroyedForDeparture ||
		!got.DestroyedAt.Equal(destroyed.Add(2*time.Hour)) {
		t.Fatalf("a departure after an erasure: %+v, %v; want it recorded, the first time kept", got, err)
	}
	list, err := r.ListDataKeys(ctx, tn.ID, store.Page{})
	must(t, err)
	if len(list) != 2 || list[0].ID != k1.ID || list[1].ID != k3.ID {
		t.Fatalf("ListDataKeys = %+v", list)
	}
	if page, err := r.ListDataKeys(ctx, tn.ID, store.Page{After: k1.ID}); err != nil || len(page) != 1 || page[0].ID != k3.ID {
		t.Fatalf("ListDataKeys after cursor = %+v, %v", page, err)
	}
}

func testPrivacySettings(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	r := st.Read().PrivacySettings()
	_, _, err := r.Get(ctx, tn.ID)
	wantErr(t, err, store.ErrNotFound, "Get of a tenant on defaults")
	put := func(doc string, expected int64) error {
		return st.Tx(ctx, func(q store.Queries) error { return q.PrivacySettings().Put(ctx, tn.ID, []byte(doc), expected, at) })
	}
	must(t, put(`{"v":1}`, 0))
	wantErr(t, put(`{"v":"again"}`, 0), store.ErrConflict, "second first Put")
	must(t, put(`{"v":2}`, 1))
	wantErr(t, put(`{"v":"stale"}`, 1), store.ErrConflict, "Put with a stale version")
	if doc, version, err := r.Get(ctx, tn.ID); err != nil || string(doc) != `{"v":2}` || version != 2 {
		t.Fatalf("Get = %s, %d, %v; want {\"v\":2}, 2", doc, version, err)
	}
	_, _, err = r.Get(ctx, other.ID)
	wantErr(t, err, store.ErrNotFound, "Get of another tenant")
	if err := put(`{not json`, 2); err == nil || errors.Is(err, store.ErrConflict) {
		t.Fatalf("Put of invalid JSON = %v, want a validation error", err)
	}
}

func newApproval(t *testing.T, st store.Store, tenantID string) store.Approval {
	t.Helper()
	a := store.Approval{ID: store.NewID(), TenantID: tenantID, Kind: "privacy.policy", Payload: []byte(`{"mode":"show"}`),
		Reason: "ticket 42", RequestedBy: "admin-1", State: "pending", CreatedAt: micro(at), ExpiresAt: micro(at.Add(72 * time.Hour))}
	tx(t, st, func(q store.Queries) error { return q.Approvals().Create(context.Background(), a) })
	return a
}

func testApprovals(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	a1, a2 := newApproval(t, st, tn.ID), newApproval(t, st, tn.ID)
	newApproval(t, st, other.ID)
	r := st.Read().Approvals()
	if got, err := r.Get(ctx, tn.ID, a1.ID); err != nil || !reflect.DeepEqual(got, a1) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, a1)
	}
	_, err := r.Get(ctx, other.ID, a1.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Approvals().Create(ctx, a1) }),
		store.ErrConflict, "Create with a used ID")
	decide := func(tenantID, id, state string) error {
		return st.Tx(ctx, func(q store.Queries) error {
			return q.Approvals().Decide(ctx, tenantID, id, state, "admin-2", at.Add(time.Hour))
		})
	}
	wantErr(t, decide(other.ID, a1.ID, "approved"), store.ErrNotFound, "Decide through another tenant")
	wantErr(t, decide(tn.ID, store.NewID(), "approved"), store.ErrNotFound, "Decide a missing approval")
	if err := decide(tn.ID, a1.ID, "pending"); err == nil {
		t.Fatal("Decide to state pending succeeded")
	}
	must(t, decide(tn.ID, a1.ID, "approved"))
	wantErr(t, decide(tn.ID, a1.ID, "rejected"), store.ErrConflict, "Decide a decided approval")
	a1.State, a1.DecidedBy, a1.DecidedAt = "approved", "admin-2", micro(at.Add(time.Hour))
	list, err := r.List(ctx, tn.ID, store.Page{})
	must(t, err)
	if len(list) != 2 || !reflect.DeepEqual(list[0], a1) || list[1].ID != a2.ID || list[1].State != "pending" {
		t.Fatalf("List = %+v", list)
	}
	if page, err := r.List(ctx, tn.ID, store.Page{After: a1.ID, Limit: 10}); err != nil || len(page) != 1 || page[0].ID != a2.ID {
		t.Fatalf("List after cursor = %+v, %v", page, err)
	}
}

// raceOnce runs fn from 16 goroutines and checks exactly one succeeded and
// the others got ErrConflict.
func raceOnce(t *testing.T, st store.Store, what string, fn func(q store.Queries) error) {
	t.Helper()
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			switch err := st.Tx(context.Background(), fn); {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("%s: %v", what, err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%s succeeded %d times, want once", what, wins.Load())
	}
}

func testApprovalDecidedOnce(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	a := newApproval(t, st, tn.ID)
	raceOnce(t, st, "Decide", func(q store.Queries) error {
		return q.Approvals().Decide(ctx, tn.ID, a.ID, "approved", "admin-2", at)
	})
	if got, err := st.Read().Approvals().Get(ctx, tn.ID, a.ID); err != nil || got.State != "approved" {
		t.Fatalf("decided approval = %+v, %v", got, err)
	}
}

func testNotices(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	mk := func(tenantID, ownership string, version int64, lang string) store.Notice {
		n := store.Notice{ID: store.NewID(), TenantID: tenantID, Ownership: ownership, Version: version, Language: lang,
			Title: "Privacy notice", Body: "# What we collect", CreatedBy: "admin-1", PublishedAt: micro(at)}
		tx(t, st, func(q store.Queries) error { return q.Notices().Create(ctx, n) })
		return n
	}
	c1en, c2de, c2en := mk(tn.ID, "corporate", 1, "en"), mk(tn.ID, "corporate", 2, "de"), mk(tn.ID, "corporate", 2, "en")
	b1 := mk(tn.ID, "byod", 1, "en")
	mk(other.ID, "corporate", 3, "en")
	dup := c2en
	dup.ID = store.NewID()
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Notices().Create(ctx, dup) }),
		store.ErrConflict, "Create of an existing version and language")
	corp, err := st.Read().Notices().List(ctx, tn.ID, "corporate")
	must(t, err)
	if !reflect.DeepEqual(corp, []store.Notice{c2de, c2en, c1en}) {
		t.Fatalf("List corporate = %+v", corp)
	}
	all, err := st.Read().Notices().List(ctx, tn.ID, "")
	must(t, err)
	if len(all) != 4 || all[0].Version != 2 || all[2].ID != b1.ID || all[3].ID != c1en.ID {
		t.Fatalf("List all = %+v", all)
	}
}

func newConsent(t *testing.T, st store.Store, tenantID, subjectID string) store.Consent {
	t.Helper()
	c := store.Consent{ID: store.NewID(), TenantID: tenantID, SubjectID: subjectID, DeviceID: "device-1",
		Ownership: "byod", NoticeVersion: 3, Language: "de", Method: "enrolment", AllowFullWipe: true, AcceptedAt: micro(at),
		Shown: store.ConsentShownNoticeAndSummary, NoticeSHA256: "notice-digest", SummarySHA256: "summary-digest", Summary: "What is kept."}
	tx(t, st, func(q store.Queries) error { return q.Consents().Create(context.Background(), c) })
	c.Summary = "" // lists leave the text out
	return c
}

// testConsentShownTexts: a consent's summary is kept once per tenant under
// its digest, and only that tenant reads it.
func testConsentShownTexts(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	newConsent(t, st, tn.ID, "subject-1")
	newConsent(t, st, tn.ID, "subject-2") // the same text again: the first row stands
	got, err := st.Read().Consents().ShownText(ctx, tn.ID, "summary-digest")
	if err != nil || got != "What is kept." {
		t.Fatalf("ShownText = %q, %v", got, err)
	}
	_, err = st.Read().Consents().ShownText(ctx, other.ID, "summary-digest")
	wantErr(t, err, store.ErrNotFound, "ShownText of another tenant")
	bare := store.Consent{ID: store.NewID(), TenantID: tn.ID, SubjectID: "subject-3", Ownership: "byod", NoticeVersion: 1,
		Language: "en", Method: "admin-recorded", AcceptedAt: micro(at)}
	tx(t, st, func(q store.Queries) error { return q.Consents().Create(ctx, bare) })
	list, err := st.Read().Consents().ListForSubject(ctx, tn.ID, "subject-3")
	must(t, err)
	if len(list) != 1 || list[0].Shown != store.ConsentShownNotRecorded || list[0].SummarySHA256 != "" {
		t.Fatalf("a consent created without what was shown lists as %+v", list)
	}
}

func testConsents(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	c1, c2 := newConsent(t, st, tn.ID, "subject-1"), newConsent(t, st, tn.ID, "subject-1")
	newConsent(t, st, tn.ID, "subject-2")
	newConsent(t, st, other.ID, "subject-1")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Consents().Create(ctx, c1) }),
		store.ErrConflict, "Create with a used ID")
	withdraw := func(tenantID, id string) error {
		return st.Tx(ctx, func(q store.Queries) error { return q.Consents().Withdraw(ctx, tenantID, id, at.Add(time.Hour)) })
	}
	tx(t, st, func(q store.Queries) error { return q.Consents().HoldForSubject(ctx, tn.ID, "subject-1") })
	tx(t, st, func(q store.Queries) error { return q.Consents().HoldForSubject(ctx, tn.ID, "nobody") })
	wantErr(t, withdraw(other.ID, c1.ID), store.ErrNotFound, "Withdraw through another tenant")
	must(t, withdraw(tn.ID, c1.ID))
	wantErr(t, withdraw(tn.ID, c1.ID), store.ErrConflict, "Withdraw twice")
	c1.WithdrawnAt = micro(at.Add(time.Hour))
	list, err := st.Read().Consents().ListForSubject(ctx, tn.ID, "subject-1")
	must(t, err)
	if !reflect.DeepEqual(list, []store.Consent{c1, c2}) {
		t.Fatalf("ListForSubject = %+v", list)
	}
}

func testConsentWithdrawnOnce(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	c := newConsent(t, st, tn.ID, "subject-1")
	raceOnce(t, st, "Withdraw", func(q store.Queries) error { return q.Consents().Withdraw(ctx, tn.ID, c.ID, at) })
}

func accessRecord(tenantID, subjectID string, when time.Time) store.AccessRecord {
	return store.AccessRecord{ID: store.NewID(), TenantID: tenantID, SubjectID: subjectID, DeviceID: "device-1",
		Actor: "admin:a1", Action: "reveal", Fields: []string{"device.serial_number", "network.wifi_mac"},
		Reason: "support ticket", At: micro(when)}
}

func testAccessRecords(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	var recs []store.AccessRecord
	for i := range 70 { // several chunk sizes
		recs = append(recs, accessRecord(tn.ID, "subject-1", at.Add(time.Duration(i)*time.Second)))
	}
	recs[3].Fields, recs[4].DeviceID = nil, ""
	tx(t, st, func(q store.Queries) error {
		if err := q.Access().Add(ctx, recs); err != nil {
			return err
		}
		return q.Access().Add(ctx, []store.AccessRecord{accessRecord(other.ID, "subject-1", at),
			accessRecord(tn.ID, "subject-2", at)})
	})
	must(t, st.Read().Access().Add(ctx, nil))
	r := st.Read().Access()
	list, err := r.ListForSubject(ctx, tn.ID, "subject-1", store.Page{Limit: 1000})
	must(t, err)
	if !reflect.DeepEqual(list, recs) {
		t.Fatalf("ListForSubject returned %d records, want the %d added, equal", len(list), len(recs))
	}
	if page, err := r.ListForSubject(ctx, tn.ID, "subject-1", store.Page{After: recs[67].ID}); err != nil ||
		!reflect.DeepEqual(page, recs[68:]) {
		t.Fatalf("ListForSubject after cursor = %+v, %v", page, err)
	}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Access().Add(ctx, recs[:1]) }),
		store.ErrConflict, "Add with a used ID")
}

func testAccessPurge(t *testing.T, st store.Store) {
	ctx := context.Background()
	t1, t2 := newTenant(t, st, ""), newTenant(t, st, "")
	cutoff := at.Add(time.Hour)
	var recs []store.AccessRecord
	for range 3 {
		recs = append(recs, accessRecord(t1.ID, "s", at), accessRecord(t2.ID, "s", at.Add(time.Minute)))
	}
	recs = append(recs, accessRecord(t1.ID, "s", cutoff), accessRecord(t2.ID, "s", cutoff.Add(time.Minute)))
	must(t, st.Read().Access().Add(ctx, recs))
	got := map[string]int{}
	for batch := 0; ; batch++ {
		var counts []store.PurgeCount
		tx(t, st, func(q store.Queries) error {
			var err error
			counts, err = q.Access().PurgeBefore(ctx, cutoff, 4)
			return err
		})
		rows := 0
		for _, c := range counts {
			got[c.TenantID+"/"+c.Category] += c.Rows
			rows += c.Rows
		}
		if rows == 0 || batch > 5 {
			break
		}
		if batch == 0 && rows != 4 {
			t.Fatalf("first PurgeBefore batch removed %d, want the limit 4", rows)
		}
	}
	want := map[string]int{t1.ID + "/access_records": 3, t2.ID + "/access_records": 3}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PurgeBefore removed %v, want %v", got, want)
	}
	for _, tn := range []store.Tenant{t1, t2} {
		if left, err := st.Read().Access().ListForSubject(ctx, tn.ID, "s", store.Page{}); err != nil || len(left) != 1 {
			t.Fatalf("records left for %s = %+v, %v; want the one at or after the cutoff", tn.ID, left, err)
		}
	}
	// Outside a transaction too.
	counts, err := st.Read().Access().PurgeBefore(ctx, cutoff.Add(time.Hour), 0)
	must(t, err)
	if len(counts) != 2 || counts[0].Rows != 1 || counts[1].Rows != 1 {
		t.Fatalf("PurgeBefore via Read = %+v", counts)
	}
}

func testReveals(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	now := at.Add(time.Hour)
	mk := func(tenantID, adminID, deviceID string, expires time.Time) store.Reveal {
		r := store.Reveal{ID: store.NewID(), TenantID: tenantID, AdminID: adminID, DeviceID: deviceID,
			Fields: []string{"device.serial_number"}, Reason: "ticket", CreatedAt: micro(at), ExpiresAt: micro(expires)}
		tx(t, st, func(q store.Queries) error { return q.Reveals().Create(ctx, r) })
		return r
	}
	live := mk(tn.ID, "a1", "d1", now.Add(time.Minute))
	mk(tn.ID, "a1", "d1", now) // expires exactly now: no longer active
	mk(tn.ID, "a2", "d1", now.Add(time.Minute))
	mk(tn.ID, "a1", "d2", now.Add(time.Minute))
	mk(other.ID, "a1", "d1", now.Add(time.Minute))
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Reveals().Create(ctx, live) }),
		store.ErrConflict, "Create with a used ID")
	got, err := st.Read().Reveals().Active(ctx, tn.ID, "a1", "d1", now)
	must(t, err)
	if !reflect.DeepEqual(got, []store.Reveal{live}) {
		t.Fatalf("Active = %+v, want [%+v]", got, live)
	}
}

func testErasures(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	mk := func(tenantID string) store.Erasure {
		e := store.Erasure{ID: store.NewID(), TenantID: tenantID, SubjectID: "subject-1",
			Certificate: []byte(`{"erased":["inventory"]}`), Signature: []byte{0, 1, 2, 255}, At: micro(at)}
		tx(t, st, func(q store.Queries) error { return q.Erasures().Create(ctx, e) })
		return e
	}
	e1, e2 := mk(tn.ID), mk(tn.ID)
	mk(other.ID)
	r := st.Read().Erasures()
	if got, err := r.Get(ctx, tn.ID, e1.ID); err != nil || !reflect.DeepEqual(got, e1) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, e1)
	}
	_, err := r.Get(ctx, other.ID, e1.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Erasures().Create(ctx, e1) }),
		store.ErrConflict, "Create with a used ID")
	if list, err := r.List(ctx, tn.ID, store.Page{}); err != nil || !reflect.DeepEqual(list, []store.Erasure{e1, e2}) {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if list, err := r.List(ctx, tn.ID, store.Page{After: e1.ID}); err != nil || len(list) != 1 || list[0].ID != e2.ID {
		t.Fatalf("List after cursor = %+v, %v", list, err)
	}
}

func testNotifications(t *testing.T, st store.Store) {
	ctx := context.Background()
	t1, t2 := newTenant(t, st, ""), newTenant(t, st, "")
	now := at.Add(time.Hour)
	mk := func(tenantID, state string, next time.Time) store.Notification {
		n := store.Notification{ID: store.NewID(), TenantID: tenantID, SubjectID: "subject-1", Kind: "policy.changed", Ref: "ref-" + state,
			Title: "Your device policy changed", Body: "Details inside.", State: state, CreatedAt: micro(at),
			NextAttemptAt: micro(next)}
		tx(t, st, func(q store.Queries) error { return q.Notifications().Create(ctx, n) })
		return n
	}
	late := mk(t1.ID, "queued", now)                    // due exactly now
	early := mk(t2.ID, "queued", now.Add(-time.Minute)) // another tenant: the outbox serves all
	mk(t1.ID, "queued", now.Add(time.Minute))           // not yet due
	sent := mk(t1.ID, "sent", now.Add(-time.Hour))
	r := st.Read().Notifications()
	due, err := r.Due(ctx, now, 10)
	must(t, err)
	if !reflect.DeepEqual(due, []store.Notification{early, late}) {
		t.Fatalf("Due = %+v, want early then late", due)
	}
	if due, err := r.Due(ctx, now, 1); err != nil || len(due) != 1 || due[0].ID != early.ID {
		t.Fatalf("Due limit 1 = %+v, %v", due, err)
	}
	late.State, late.Attempts, late.LastError = "sent", 2, "421 try later"
	late.NextAttemptAt, late.SentAt = micro(now.Add(time.Minute)), micro(now.Add(time.Minute))
	tx(t, st, func(q store.Queries) error { return q.Notifications().Update(ctx, late) })
	moved := early
	moved.TenantID = t1.ID
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Notifications().Update(ctx, moved) }),
		store.ErrNotFound, "Update through another tenant")
	list, err := r.ListForSubject(ctx, t1.ID, "subject-1")
	must(t, err)
	if len(list) != 3 || !reflect.DeepEqual(list[0], late) || list[2].ID != sent.ID {
		t.Fatalf("ListForSubject = %+v", list)
	}
}

func testPortalTokens(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	mk := func(tenantID, subjectID string) store.PortalToken {
		id := store.NewID()
		p := store.PortalToken{ID: id, TenantID: tenantID, SubjectID: subjectID, SecretHash: []byte("hash-" + id),
			CreatedAt: micro(at), ExpiresAt: micro(at.Add(24 * time.Hour))}
		tx(t, st, func(q store.Queries) error { return q.PortalTokens().Create(ctx, p) })
		return p
	}
	p1 := mk(tn.ID, "subject-1")
	mk(tn.ID, "subject-1")
	keep, foreign := mk(tn.ID, "subject-2"), mk(other.ID, "subject-1")
	r := st.Read().PortalTokens()
	if got, err := r.GetBySecretHash(ctx, p1.SecretHash); err != nil || !reflect.DeepEqual(got, p1) {
		t.Fatalf("GetBySecretHash = %+v, %v; want %+v", got, err, p1)
	}
	_, err := r.GetBySecretHash(ctx, []byte("unknown"))
	wantErr(t, err, store.ErrNotFound, "GetBySecretHash unknown")
	dup := p1
	dup.ID = store.NewID()
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.PortalTokens().Create(ctx, dup) }),
		store.ErrConflict, "Create with a used secret hash")
	revoke := func(at time.Time) int {
		t.Helper()
		var n int
		tx(t, st, func(q store.Queries) error {
			var err error
			n, err = q.PortalTokens().RevokeForSubject(ctx, tn.ID, "subject-1", at)
			return err
		})
		return n
	}
	revokedAt := micro(at.Add(time.Hour))
	if n := revoke(revokedAt); n != 2 {
		t.Fatalf("RevokeForSubject = %d, want 2", n)
	}
	if n := revoke(revokedAt.Add(time.Hour)); n != 0 {
		t.Fatalf("second RevokeForSubject = %d, want 0", n)
	}
	if got, err := r.GetBySecretHash(ctx, p1.SecretHash); err != nil || !got.RevokedAt.Equal(revokedAt) {
		t.Fatalf("revoked token = %+v, %v", got, err)
	}
	for _, p := range []store.PortalToken{keep, foreign} {
		if got, err := r.GetBySecretHash(ctx, p.SecretHash); err != nil || !got.RevokedAt.IsZero() {
			t.Fatalf("token of another subject or tenant = %+v, %v; want it live", got, err)
		}
	}
}

func testDeleteForSubject(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	sub, bystander := newSubject(t, st, tn.ID, nil), newSubject(t, st, tn.ID, nil)
	d1, d2 := newDevice(t, st, tn.ID, sub.ID, "byod"), newDevice(t, st, tn.ID, sub.ID, "corporate")
	dOther := newDevice(t, st, tn.ID, bystander.ID, "byod")
	dForeign := newDevice(t, st, other.ID, sub.ID, "byod") // same subject ID in another tenant
	tx(t, st, func(q store.Queries) error {
		var recs []store.AccessRecord
		for _, s := range []string{sub.ID, sub.ID, bystander.ID} {
			recs = append(recs, accessRecord(tn.ID, s, at))
		}
		recs = append(recs, accessRecord(other.ID, sub.ID, at))
		if err := q.Access().Add(ctx, recs); err != nil {
			return err
		}
		for _, n := range []struct{ tenant, subject string }{{tn.ID, sub.ID}, {tn.ID, bystander.ID}, {other.ID, sub.ID}} {
			if err := q.Notifications().Create(ctx, store.Notification{ID: store.NewID(), TenantID: n.tenant,
				SubjectID: n.subject, Kind: "k", Title: "t", Body: "b", State: "queued", CreatedAt: at, NextAttemptAt: at}); err != nil {
				return err
			}
		}
		for _, d := range []store.Device{d1, d2, d2, dOther, dForeign} {
			if err := q.Reveals().Create(ctx, store.Reveal{ID: store.NewID(), TenantID: d.TenantID, AdminID: "a1",
				DeviceID: d.ID, Fields: []string{"f"}, Reason: "r", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	})
	var removed map[string]int
	tx(t, st, func(q store.Queries) error {
		var err error
		removed, err = q.SubjectData().DeleteForSubject(ctx, tn.ID, sub.ID)
		return err
	})
	if want := map[string]int{"access_records": 2, "notifications": 1, "reveals": 3}; !reflect.DeepEqual(removed, want) {
		t.Fatalf("DeleteForSubject = %v, want %v", removed, want)
	}
	r := st.Read()
	for _, c := range []struct {
		tenant, subject string
		device          store.Device
		want            int
	}{{tn.ID, sub.ID, d1, 0}, {tn.ID, bystander.ID, dOther, 1}, {other.ID, sub.ID, dForeign, 1}} {
		recs, err := r.Access().ListForSubject(ctx, c.tenant, c.subject, store.Page{})
		must(t, err)
		notes, err := r.Notifications().ListForSubject(ctx, c.tenant, c.subject)
		must(t, err)
		reveals, err := r.Reveals().Active(ctx, c.tenant, "a1", c.device.ID, at)
		must(t, err)
		if len(recs) != c.want || len(notes) != c.want || len(reveals) != c.want {
			t.Fatalf("after DeleteForSubject, %s/%s keeps %d records, %d notifications, %d reveals; want %d each",
				c.tenant, c.subject, len(recs), len(notes), len(reveals), c.want)
		}
	}
	if err := st.Tx(ctx, func(q store.Queries) error { _, err := q.SubjectData().DeleteForSubject(ctx, tn.ID, ""); return err }); err == nil {
		t.Fatal("DeleteForSubject with no subject succeeded")
	}
}
