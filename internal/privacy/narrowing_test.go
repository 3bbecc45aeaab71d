package privacy_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// narrow applies changes that only narrow the policy.
func (f *fixture) narrow(changes ...privacy.Change) privacy.PolicyChangeResult {
	f.t.Helper()
	res, err := f.svc.RequestPolicyChange(f.ctx, f.tenant, privacy.PolicyChangeInput{Changes: changes, Reason: "we no longer need it"}, "admin-1", admin)
	if err != nil || !res.Applied {
		f.t.Fatalf("narrowing %+v: %+v, %v", changes, res, err)
	}
	return res
}

// hookCalls records what the gate's Changed hook was handed, by device.
type hookCalls struct {
	current map[string]map[string]store.InventoryValue
	changed map[string][]string
}

func (f *fixture) recordHook() *hookCalls {
	h := &hookCalls{}
	h.reset()
	f.svc.Gate().Changed = func(_ context.Context, _ store.Queries, d store.Device, current []store.InventoryValue, changed []string) error {
		if _, again := h.current[d.ID]; again {
			f.t.Errorf("the hook ran twice for device %s", d.ID)
		}
		h.current[d.ID], h.changed[d.ID] = map[string]store.InventoryValue{}, changed
		for _, v := range current {
			h.current[d.ID][v.Field] = v
		}
		return nil
	}
	return h
}

func (h *hookCalls) reset() {
	h.current, h.changed = map[string]map[string]store.InventoryValue{}, map[string][]string{}
}

// TestDroppingDeviceIdentityForgetsTheSerialIndex: once the policy stops
// collecting device identity for a class, its devices are no longer found
// by serial number or UDID, while another class's still are; a device still
// indexed (an index kept by a release before this one) loses it at its next
// report.
func TestDroppingDeviceIdentityForgetsTheSerialIndex(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		corp, byod := f.device(erika.ID, privacy.Corporate), f.device(erika.ID, privacy.Personal)
		const byodSerial = "F2LBYODSERIAL1"
		f.ingest(deviceInformation(f, corp.ID))
		f.ingest(privacy.Report{TenantID: f.tenant, DeviceID: corp.ID, Source: "test/Identity", At: f.now,
			Values: []privacy.Observation{{Field: "device.udid", Value: "00008110-MARKER-UDID"}}})
		f.ingest(privacy.Report{TenantID: f.tenant, DeviceID: byod.ID, Source: "test/Identity", At: f.now,
			Values: []privacy.Observation{{Field: "device.serial_number", Value: byodSerial}}})
		findBySerial := func(serial string) []store.Device {
			t.Helper()
			found, err := f.svc.FindDevicesBySerial(f.ctx, f.tenant, serial, store.Page{})
			if err != nil {
				t.Fatal(err)
			}
			return found
		}
		indexed, err := st.Read().Devices().Get(f.ctx, f.tenant, corp.ID)
		if err != nil || indexed.SerialIndex == nil || indexed.UDIDIndex == nil || len(findBySerial(markerSerial)) != 1 {
			t.Fatalf("before the narrowing the corporate device is not indexed: %+v, %v", indexed, err)
		}

		f.narrow(privacy.Change{Ownership: privacy.Corporate, Category: privacy.DeviceIdentity, Mode: privacy.Drop})
		if found := findBySerial(markerSerial); len(found) != 0 {
			t.Errorf("found %d devices by a serial number the policy no longer collects", len(found))
		}
		d, err := st.Read().Devices().Get(f.ctx, f.tenant, corp.ID)
		if err != nil || d.SerialIndex != nil || d.UDIDIndex != nil {
			t.Errorf("after the narrowing: serial index %x, UDID index %x, %v; want neither", d.SerialIndex, d.UDIDIndex, err)
		}
		if found := findBySerial(byodSerial); len(found) != 1 || found[0].ID != byod.ID {
			t.Errorf("the personal device, whose class still collects it, found by serial: %+v", found)
		}

		// An index left from before converges when the device reports.
		d.SerialIndex, d.UDIDIndex = indexed.SerialIndex, indexed.UDIDIndex
		if err := st.Tx(f.ctx, func(q store.Queries) error { return q.Devices().Update(f.ctx, d) }); err != nil {
			t.Fatal(err)
		}
		f.ingest(deviceInformation(f, corp.ID))
		if found := findBySerial(markerSerial); len(found) != 0 {
			t.Errorf("after its next report the device is still found by serial: %d devices", len(found))
		}
		if d, err = st.Read().Devices().Get(f.ctx, f.tenant, corp.ID); err != nil || d.SerialIndex != nil || d.UDIDIndex != nil {
			t.Errorf("after its next report: serial index %x, UDID index %x, %v; want neither", d.SerialIndex, d.UDIDIndex, err)
		}
	})
}

// TestNarrowingRerunsTheChangedHook: a narrowing hands the Changed hook,
// at once, every remaining device of the class with what it may still
// show: dropped values gone, values of a category now hidden marked so,
// and stored so for later reports. Devices of other classes and those
// that left are not touched.
func TestNarrowingRerunsTheChangedHook(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		corp, byod := f.device(erika.ID, privacy.Corporate), f.device(erika.ID, privacy.Personal)
		returned := f.device("", privacy.Corporate)
		for _, d := range []store.Device{corp, byod, returned} {
			f.ingest(deviceInformation(f, d.ID))
		}
		if _, err := f.svc.DeprovisionDevice(f.ctx, f.tenant, returned.ID, "returned to the leasing company", admin); err != nil {
			t.Fatal(err)
		}
		hook := f.recordHook()

		f.narrow(privacy.Change{Ownership: privacy.Corporate, Category: privacy.Hardware, Mode: privacy.Drop},
			privacy.Change{Ownership: privacy.Corporate, Category: privacy.OS, Mode: privacy.Hide})
		if len(hook.current) != 1 || hook.current[corp.ID] == nil {
			t.Fatalf("the hook ran for %d devices, want only the corporate one still managed", len(hook.current))
		}
		seen := hook.current[corp.ID]
		if len(hook.changed[corp.ID]) != 0 {
			t.Errorf("the hook was told fields %v changed; no report brought any", hook.changed[corp.ID])
		}
		if _, ok := seen["hardware.model"]; ok {
			t.Error("the hook was handed the model the policy no longer collects")
		}
		if v, ok := seen["os.version"]; !ok || !v.Hidden {
			t.Errorf("the hook was handed the OS version %+v; want it hidden", v)
		}
		if v := seen["security.passcode_present"]; v.Hidden || string(v.Value) != "true" {
			t.Errorf("the hook was handed the passcode state %+v; want it shown as before", v)
		}
		stored, err := st.Read().Inventory().CurrentOf(f.ctx, f.tenant, corp.ID, []string{"os.version"})
		if err != nil || len(stored) != 1 || !stored[0].Hidden {
			t.Fatalf("the stored OS version: %+v, %v; want it stored hidden", stored, err)
		}

		// A value still stored shown though its category is hidden (as a
		// narrowing by an earlier release left it) reaches the hook hidden,
		// from a later narrowing and from a report alike.
		stored[0].Hidden = false
		if err := st.Tx(f.ctx, func(q store.Queries) error { return q.Inventory().Put(f.ctx, stored, nil) }); err != nil {
			t.Fatal(err)
		}
		hook.reset()
		f.narrow(privacy.Change{Ownership: privacy.Corporate, Category: privacy.Network, Mode: privacy.Drop})
		if v := hook.current[corp.ID]["os.version"]; !v.Hidden {
			t.Errorf("after a later narrowing the hook was handed the OS version %+v; want it hidden", v)
		}
		hook.reset()
		f.ingest(privacy.Report{TenantID: f.tenant, DeviceID: corp.ID, Source: "test/SecurityInfo", At: f.now,
			Values: []privacy.Observation{{Field: "security.passcode_present", Value: false}}})
		if v := hook.current[corp.ID]["os.version"]; !v.Hidden {
			t.Errorf("after a report the hook was handed the OS version %+v; want it hidden", v)
		}

	})
}

// TestRetentionPurgeRerunsTheChangedHook: a value that expires takes with
// it what device management derived from it: the hook runs for the device
// that lost it, without it, and for no device that lost nothing current.
func TestRetentionPurgeRerunsTheChangedHook(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		if _, err := f.svc.SetRetention(f.ctx, f.tenant, map[privacy.Category]int{privacy.OS: 1}, "OS versions go stale", "admin-1", admin); err != nil {
			t.Fatal(err)
		}
		erika := f.person("erika@acme.test")
		silent, reporting := f.device(erika.ID, privacy.Corporate), f.device(erika.ID, privacy.Corporate)
		f.ingest(deviceInformation(f, silent.ID))
		f.now = f.now.Add(12 * time.Hour)
		f.ingest(deviceInformation(f, reporting.ID))
		hook := f.recordHook()

		f.now = f.now.Add(13 * time.Hour) // the silent device's OS version is a day old
		res, err := (&privacy.Purger{Service: f.svc, Batch: 100}).RunOnce(f.ctx)
		if err != nil || res.ByKey[f.tenant+"/os"] != 1 {
			t.Fatalf("purge: %+v, %v; want the silent device's OS version", res, err)
		}
		if ids := slices.Sorted(maps.Keys(hook.current)); !slices.Equal(ids, []string{silent.ID}) {
			t.Fatalf("the hook ran for %v, want only the silent device %s", ids, silent.ID)
		}
		seen := hook.current[silent.ID]
		if _, ok := seen["os.version"]; ok {
			t.Error("the hook was handed the OS version that expired")
		}
		if v := seen["hardware.model"]; string(v.Value) != `"iPhone 15"` {
			t.Errorf("the hook was handed the model %+v; want it as it was", v)
		}
	})
}
