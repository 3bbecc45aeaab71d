package privacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func TestGateFollowsOwnershipPolicy(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		corp := f.device(erika.ID, privacy.Corporate)
		byod := f.device(erika.ID, privacy.Personal)

		got := f.ingest(deviceInformation(f, corp.ID))
		if got.Dropped != 0 || got.Stored != 9 {
			t.Errorf("corporate: %+v, want all 9 stored", got)
		}
		got = f.ingest(deviceInformation(f, byod.ID))
		// Personal: location and telephony (phone, IMEI) are never collected.
		if got.Dropped != 3 || got.Stored != 6 {
			t.Errorf("personal: %+v, want 3 dropped, 6 stored", got)
		}

		cv := f.view(corp.ID)
		if string(cv["telephony.phone_number"].Value) != `"`+markerPhone+`"` {
			t.Errorf("corporate phone number: %+v", cv["telephony.phone_number"])
		}
		if !cv["location.coordinates"].Masked || cv["location.coordinates"].Value != nil {
			t.Errorf("corporate location must be collected but hidden: %+v", cv["location.coordinates"])
		}
		var apps []privacy.App
		if err := json.Unmarshal(cv["apps.installed"].Value, &apps); err != nil || len(apps) != 2 {
			t.Errorf("corporate apps: %s (%v)", cv["apps.installed"].Value, err)
		}

		pv := f.view(byod.ID)
		for _, field := range []string{"telephony.phone_number", "telephony.imei", "location.coordinates"} {
			if _, ok := pv[field]; ok {
				t.Errorf("personal device holds %s", field)
			}
		}
		if !pv["device.serial_number"].Masked {
			t.Errorf("personal serial number must be hidden: %+v", pv["device.serial_number"])
		}
		// The employee's own apps are never inventoried on a personal device.
		if v := pv["apps.installed"]; bytes.Contains(v.Value, []byte(markerPersonal)) || !bytes.Contains(v.Value, []byte(markerManaged)) {
			t.Errorf("personal apps: %s", v.Value)
		}
		if !pv["os.version"].Personal && string(pv["os.version"].Value) != `"18.1"` {
			t.Errorf("os version: %+v", pv["os.version"])
		}
	})
}

// A report that repeats what is stored moves only the values' freshness:
// no new ciphertext, no history row.
func TestGateRefreshesUnchangedValues(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		d := f.device(f.person("erika@acme.test").ID, privacy.Corporate)
		f.ingest(deviceInformation(f, d.ID))
		before, err := st.Read().Inventory().Current(f.ctx, f.tenant, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		again := deviceInformation(f, d.ID)
		again.At = f.now.Add(time.Hour)
		again.Values[3].Value = "18.2" // one value changes
		if got := f.ingest(again); got.Stored != 1 || got.Unchanged != 8 {
			t.Fatalf("second report: %+v, want 1 stored and 8 unchanged", got)
		}
		after, err := st.Read().Inventory().Current(f.ctx, f.tenant, d.ID)
		if err != nil || len(after) != len(before) {
			t.Fatalf("current values: %d, %v; want %d", len(after), err, len(before))
		}
		for i, v := range after {
			old := before[i]
			if !v.CollectedAt.Equal(again.At.UTC().Truncate(time.Microsecond)) {
				t.Errorf("%s collected at %v, want the second report's time", v.Field, v.CollectedAt)
			}
			if v.Field != "os.version" && (!bytes.Equal(v.Ciphertext, old.Ciphertext) || !bytes.Equal(v.Value, old.Value)) {
				t.Errorf("%s was rewritten though unchanged", v.Field)
			}
		}
		hist, err := st.Read().Inventory().History(f.ctx, f.tenant, d.ID, 0)
		if err != nil || len(hist) != 1 || hist[0].Field != "os.version" {
			t.Fatalf("history = %+v, %v; want only the old OS version", hist, err)
		}

		// Confirmed again minutes later: nothing is rewritten.
		soon := deviceInformation(f, d.ID)
		soon.At = again.At.Add(5 * time.Minute)
		soon.Values[3].Value = "18.2"
		if got := f.ingest(soon); got.Stored != 0 || got.Unchanged != 9 {
			t.Fatalf("third report: %+v, want 9 unchanged", got)
		}
		cur, err := st.Read().Inventory().Current(f.ctx, f.tenant, d.ID)
		if err != nil || !cur[0].CollectedAt.Equal(after[0].CollectedAt) {
			t.Fatalf("a report minutes later moved the collection time: %+v, %v", cur, err)
		}

		// A longer retention does not keep what was collected under the
		// shorter one any longer.
		if _, err := f.svc.SetRetention(f.ctx, f.tenant, map[privacy.Category]int{privacy.Location: 3}, "shorter location retention", admin.ID, admin); err != nil {
			t.Fatal(err)
		}
		if cur, err = st.Read().Inventory().Current(f.ctx, f.tenant, d.ID); err != nil {
			t.Fatal(err)
		}
		expiry := map[string]time.Time{}
		for _, v := range cur {
			expiry[v.Field] = v.ExpiresAt
		}
		f.lengthenRetention(map[privacy.Category]int{privacy.Location: 7})
		if cur, err = st.Read().Inventory().Current(f.ctx, f.tenant, d.ID); err != nil {
			t.Fatal(err)
		}
		for _, v := range cur {
			if !v.ExpiresAt.Equal(expiry[v.Field]) {
				t.Errorf("%s: a longer retention moved its expiry from %v to %v", v.Field, expiry[v.Field], v.ExpiresAt)
			}
		}

		// Nor does a shorter one after it, that is still longer than the
		// one they were collected under.
		if _, err := f.svc.SetRetention(f.ctx, f.tenant, map[privacy.Category]int{privacy.Location: 5}, "location retention between the two", admin.ID, admin); err != nil {
			t.Fatal(err)
		}
		if cur, err = st.Read().Inventory().Current(f.ctx, f.tenant, d.ID); err != nil {
			t.Fatal(err)
		}
		for _, v := range cur {
			if !v.ExpiresAt.Equal(expiry[v.Field]) {
				t.Errorf("%s: shortening to a period longer than its own moved its expiry from %v to %v", v.Field, expiry[v.Field], v.ExpiresAt)
			}
		}

		// Never kept past a retention shortened in between.
		if _, err := f.svc.SetRetention(f.ctx, f.tenant, map[privacy.Category]int{privacy.Location: 1}, "shorter location retention", admin.ID, admin); err != nil {
			t.Fatal(err)
		}
		f.ingest(soon)
		if cur, err = st.Read().Inventory().Current(f.ctx, f.tenant, d.ID); err != nil {
			t.Fatal(err)
		}
		for _, v := range cur {
			if limit := soon.At.UTC().Add(24 * time.Hour); v.Field == "location.coordinates" && (v.ExpiresAt.IsZero() || v.ExpiresAt.After(limit)) {
				t.Errorf("location expires at %v after its retention shrank to a day, later than %v", v.ExpiresAt, limit)
			}
		}
	})
}

// The gate compares only the fields a report names, but a report that
// changes one still hands the Changed hook every value the device holds,
// with the new one, so projections built from them stay whole.
func TestGateHandsTheHookEveryCurrentValue(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		d := f.device(f.person("erika@acme.test").ID, privacy.Corporate)
		f.ingest(deviceInformation(f, d.ID))
		var calls int
		var seen map[string]store.InventoryValue
		var changed []string
		f.svc.Gate().Changed = func(_ context.Context, _ store.Queries, _ store.Device, current []store.InventoryValue, ch []string) error {
			calls++
			seen, changed = map[string]store.InventoryValue{}, ch
			for _, v := range current {
				seen[v.Field] = v
			}
			return nil
		}
		one := func(field string, value any) privacy.Report {
			return privacy.Report{TenantID: f.tenant, DeviceID: d.ID, Source: "test/SecurityInfo", At: f.now.Add(time.Minute),
				Values: []privacy.Observation{{Field: field, Value: value}}}
		}
		if got := f.ingest(one("security.passcode_present", true)); got.Unchanged != 1 || calls != 0 {
			t.Fatalf("an unchanged report: %+v, hook called %d times; want it unchanged and no call", got, calls)
		}
		f.ingest(one("security.passcode_present", false))
		if calls != 1 || len(changed) != 1 || changed[0] != "security.passcode_present" {
			t.Fatalf("hook called %d times with changed %v; want once with the passcode", calls, changed)
		}
		if len(seen) != 9 {
			t.Errorf("hook saw %d values, want all 9 the device holds", len(seen))
		}
		if v := seen["security.passcode_present"]; string(v.Value) != "false" {
			t.Errorf("hook saw the passcode as %s, want the new value", v.Value)
		}
		if v := seen["os.version"]; string(v.Value) != `"18.1"` {
			t.Errorf("hook saw the unreported OS version as %s", v.Value)
		}
	})
}

func TestGateRefusesUnknownFieldsAndDeprovisionedDevices(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	d := f.device("", privacy.Corporate)
	_, err := f.svc.Ingest(f.ctx, privacy.Report{TenantID: f.tenant, DeviceID: d.ID, Values: []privacy.Observation{
		{Field: "os.version", Value: "1"}, {Field: "device.favourite_colour", Value: "blue"}}})
	if err == nil {
		t.Fatal("an unknown field was admitted")
	}
	if cur, _ := f.st.Read().Inventory().Current(f.ctx, f.tenant, d.ID); len(cur) != 0 {
		t.Errorf("a refused report stored %d values", len(cur))
	}
	if _, err := f.svc.DeprovisionDevice(f.ctx, f.tenant, d.ID, "device sold to a reseller", admin); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Ingest(f.ctx, privacy.Report{TenantID: f.tenant, DeviceID: d.ID, Values: []privacy.Observation{{Field: "os.version", Value: "1"}}}); err == nil {
		t.Error("a deprovisioned device's report was admitted")
	}
}

// TestDroppedValuesAreNowhereInTheDatabase scans the raw SQLite file (and
// its WAL) and every PostgreSQL row for values the gate dropped.
func TestDroppedValuesAreNowhereInTheDatabase(t *testing.T) {
	absent := []string{markerPhone, markerIMEI, markerPersonal, "telephony.phone_number", "location.coordinates", "52.520008",
		// Personal values that were stored are encrypted: no plaintext either.
		markerSerial, markerManaged, "erika@acme.test", "Erika Mustermann"}
	present := []string{"iPhone 15", "os.version"} // the scan sees stored plaintext: it has teeth

	fill := func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		byod := f.device(erika.ID, privacy.Personal)
		f.ingest(deviceInformation(f, byod.ID))
		f.ingest(deviceInformation(f, byod.ID)) // again: nothing leaks through history either
	}
	check := func(t *testing.T, raw []byte) {
		for _, s := range absent {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("the database holds %q", s)
			}
		}
		for _, s := range present {
			if !bytes.Contains(raw, []byte(s)) {
				t.Errorf("the scan did not find stored plaintext %q: is it reading the data?", s)
			}
		}
	}

	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "steward.db")
		db, err := sqlstore.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		fill(t, db)
		// Scan before closing too: the WAL holds the newest pages.
		var raw []byte
		for _, suffix := range []string{"", "-wal"} {
			b, err := os.ReadFile(path + suffix)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			raw = append(raw, b...)
		}
		check(t, raw)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		check(t, b)
	})
	t.Run("postgres", func(t *testing.T) {
		st := storetest.OpenPostgres(t)
		fill(t, st)
		check(t, storetest.AllValues(t, st))
	})
}

func TestDevicesAreFoundBySerialThroughTheBlindIndex(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	erika := f.person("erika@acme.test")
	corp, byod := f.device(erika.ID, privacy.Corporate), f.device(erika.ID, privacy.UserEnrolled)
	f.ingest(deviceInformation(f, corp.ID))
	f.ingest(deviceInformation(f, byod.ID)) // user enrolment: device identity is never collected
	found, err := f.svc.FindDevicesBySerial(f.ctx, f.tenant, " "+strings.ToLower(markerSerial)+" ", store.Page{})
	if err != nil || len(found) != 1 || found[0].ID != corp.ID {
		t.Fatalf("found %+v (%v), want only the corporate device", found, err)
	}
	if found, _ := f.svc.FindDevicesBySerial(f.ctx, f.tenant, "NOT-A-SERIAL", store.Page{}); len(found) != 0 {
		t.Errorf("an unknown serial found %d devices", len(found))
	}
	other := f.makeTenant("globex")
	if found, _ := f.svc.FindDevicesBySerial(f.ctx, other, markerSerial, store.Page{}); len(found) != 0 {
		t.Error("another tenant found the device")
	}
}
