package mdm_test

import (
	"strconv"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestMacCapacitiesInGigabytes: a Mac on macOS 11 or earlier reports its
// capacities in gibibytes (information.device.yaml); they are kept in
// gigabytes, as every other device reports them.
func TestMacCapacitiesInGigabytes(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	on := func(version string) func(*sim.Device) { return func(d *sim.Device) { d.OSVersion = version } }
	for _, c := range []struct {
		name             string
		adjust           []func(*sim.Device)
		total, available float64
	}{
		{"a Mac on macOS 11", []func(*sim.Device){mac, on("11.7.10")}, 256 * 1.073741824, 117.4 * 1.073741824},
		{"a Mac on macOS 12", []func(*sim.Device){mac, on("12.7.6")}, 256, 117.4},
		{"an iPhone on iOS 11", []func(*sim.Device){on("11.4")}, 256, 117.4},
	} {
		_, dev := f.polled(ts, privacy.Corporate, "", c.adjust...)
		got := f.fields(dev.ID)
		for field, want := range map[string]float64{"hardware.capacity_gb": c.total, "hardware.available_gb": c.available} {
			v, err := strconv.ParseFloat(string(got[field].Value), 64)
			if err != nil || v < want-1e-6 || v > want+1e-6 {
				t.Errorf("%s: %s stored as %s, want %v", c.name, field, got[field].Value, want)
			}
		}
	}
}
