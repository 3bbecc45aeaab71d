package privacy_test

import (
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestDepartedPersonalDevicesKeepNoProjection: a personally owned device
// that leaves, or whose person is erased, keeps nothing on its row derived
// from what it reported (model, OS version, rule facts); an organisation's
// keeps its model for the asset record.
func TestDepartedPersonalDevicesKeepNoProjection(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika, jonas := f.person("erika@acme.test"), f.person("jonas@acme.test")
		own, work, jonasOwn := f.device(erika.ID, privacy.Personal), f.device(erika.ID, privacy.Corporate), f.device(jonas.ID, privacy.Personal)
		for _, d := range []store.Device{own, work, jonasOwn} {
			if err := st.Tx(f.ctx, func(q store.Queries) error {
				return q.ManagedDevices().SetProjection(f.ctx, store.DeviceProjection{TenantID: f.tenant, DeviceID: d.ID,
					Model: "iPhone 15", OSVersion: "18.1", Facts: []byte(`{"hardware.model":"iPhone 15"}`)})
			}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.svc.DeprovisionDevice(f.ctx, f.tenant, work.ID, "returned to IT", admin); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.DeprovisionDevice(f.ctx, f.tenant, own.ID, "Erika left the programme", admin); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.EraseSubject(f.ctx, f.tenant, jonas.ID, "Art 17 request, ticket 7", admin); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]string{work.ID: "iPhone 15", own.ID: "", jonasOwn.ID: ""} {
			d, err := st.Read().Devices().Get(f.ctx, f.tenant, id)
			if err != nil || d.Model != want || (want == "" && d.OSVersion != "") {
				t.Errorf("device %s after it left: model %q, OS %q (%v); want model %q", id, d.Model, d.OSVersion, err, want)
			}
		}
	})
}
