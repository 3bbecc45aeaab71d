package mdm_test

import (
	"net/http"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestOnlyIPhonesIPadsAndMacsEnrol: an Apple TV, a watch or a Vision Pro
// follows its own column of Apple's schema, which Steward does not
// implement; its Authenticate is refused before any device is recorded,
// rather than the device being managed as an iPhone. Each kind Steward
// manages gets its own platform.
func TestOnlyIPhonesIPadsAndMacsEnrol(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	for _, product := range []string{"AppleTV14,1", "Watch7,1", "RealityDevice14,1"} {
		d, err := sim.New(ts.Client(), false)
		if err != nil {
			t.Fatal(err)
		}
		d.Model, d.ProductName = product, product
		err = d.Enrol(f.ctx, f.invite(privacy.Corporate, ""), false)
		if status(t, err) != http.StatusForbidden {
			t.Errorf("%s enrolling: %v; want 403", product, err)
		}
	}
	if devices, err := f.st.Read().Devices().List(f.ctx, f.tenant, store.DeviceFilter{}); err != nil || len(devices) != 0 {
		t.Fatalf("refused devices were recorded: %d (%v)", len(devices), err)
	}
	for product, want := range map[string]string{"iPhone16,2": "ios", "iPad14,1": "ipados", "Mac14,2": "macos"} {
		_, dev := f.enrolledWith(ts, privacy.Corporate, "", func(d *sim.Device) { d.Model, d.ProductName = product, product })
		if dev.Platform != want {
			t.Errorf("%s: platform %q, want %q", product, dev.Platform, want)
		}
	}
}

// TestDeviceNamingAnUnmanagedProductLeaves: a device whose Authenticate
// named nothing answers DeviceInformation naming a Vision Pro. It leaves
// (here, with no protocol hook to tell it, it is deprovisioned at once),
// nothing of what it reported is kept, and its exchange still succeeds.
func TestDeviceNamingAnUnmanagedProductLeaves(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		unnamed := func(d *sim.Device) { d.Model, d.ProductName = "", "" }
		headset, headsetDev := f.enrolledWith(ts, privacy.Corporate, "", unnamed)

		headset.Model, headset.ProductName = "RealityDevice14,1", "RealityDevice14,1"
		if _, err := headset.Poll(f.ctx); err != nil {
			t.Fatalf("the Vision Pro's exchange: %v", err)
		}
		if d, _ := st.Read().Devices().Get(f.ctx, f.tenant, headsetDev.ID); d.State != store.DeviceDeprovisioned || d.Platform != "" {
			t.Errorf("the Vision Pro: state %q, platform %q; want deprovisioned, no platform", d.State, d.Platform)
		}
		if values, err := st.Read().Inventory().Current(f.ctx, f.tenant, headsetDev.ID); err != nil || len(values) != 0 {
			t.Errorf("the Vision Pro's inventory: %d values (%v), want none kept", len(values), err)
		}

	})
}
