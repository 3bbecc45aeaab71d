package privacy_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// BenchmarkGateUnchangedReport is the gate's steady state in the MDM load
// benchmark: a corporate phone, its initial inventory stored (40 apps, as
// the simulator has), answering DeviceInformation again a second after the
// same answer. admit-µs/op times Admit alone, without the commit and its
// fsync: what the gate costs SQLite's single writer.
func BenchmarkGateUnchangedReport(b *testing.B) {
	f := newFixture(b, storetest.OpenSQLite(b))
	d := f.device(f.person("erika@acme.test").ID, privacy.Corporate)
	values := []privacy.Observation{
		{Field: "device.udid", Value: "00008110-000A1C2E3F40801E"}, {Field: "device.serial_number", Value: markerSerial},
		{Field: "device.name", Value: "Simulated iPhone"}, {Field: "hardware.model", Value: "iPhone"},
		{Field: "hardware.product", Value: "iPhone15,2"}, {Field: "hardware.capacity_gb", Value: 256.0},
		{Field: "hardware.available_gb", Value: 117.4}, {Field: "hardware.battery_level", Value: 0.81},
		{Field: "os.version", Value: "18.1"}, {Field: "os.build", Value: "22B83"}, {Field: "os.supervised", Value: true},
		{Field: "network.wifi_mac", Value: "a4:83:e7:12:34:56"}, {Field: "network.bluetooth_mac", Value: "a4:83:e7:12:34:57"},
		{Field: "telephony.phone_number", Value: markerPhone}, {Field: "telephony.imei", Value: markerIMEI},
		{Field: "telephony.iccid", Value: "8949 0200 0012 3456 7890"}, {Field: "telephony.carrier", Value: "Telekom.de"},
		{Field: "security.activation_lock", Value: true},
	}
	var apps []privacy.App
	for i := range 40 {
		apps = append(apps, privacy.App{ID: fmt.Sprintf("com.example.app%03d", i), Name: fmt.Sprintf("App %d", i), Version: "1.0", Managed: i%4 == 0})
	}
	initial := append(slices.Clone(values), privacy.Observation{Field: "apps.installed", Value: apps},
		privacy.Observation{Field: "security.passcode_present", Value: true}, privacy.Observation{Field: "security.encrypted", Value: true})
	report := privacy.Report{TenantID: f.tenant, DeviceID: d.ID, Source: "bench/initial inventory", At: f.now, Values: initial}
	if got := f.ingest(report); got.Stored != len(initial) {
		b.Fatalf("first report: %+v", got)
	}
	report.Source, report.Values = "bench/DeviceInformation", values
	gate := &privacy.Gate{Vault: keys.New(f.sealer)}
	var admitting time.Duration
	for b.Loop() {
		report.At = report.At.Add(time.Second)
		err := f.st.Tx(f.ctx, func(q store.Queries) error {
			start := time.Now()
			got, err := gate.Admit(f.ctx, q, report)
			admitting += time.Since(start)
			if err == nil && got.Unchanged != len(values) {
				b.Fatalf("repeated report: %+v", got)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(admitting.Microseconds())/float64(b.N), "admit-µs/op")
}
