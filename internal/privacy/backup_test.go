package privacy_test

import (
	"bytes"
	"testing"

	"github.com/steward-mdm/steward/internal/backup"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestBackupBeforeErasureRestoredAfterIt is the crypto-shredding promise: a
// backup taken before a person's erasure, restored after it, yields none of
// their personal data, and Steward reports them as erased.
func TestBackupBeforeErasureRestoredAfterIt(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		bob := f.person("bob@acme.test")
		eDev, bDev := f.device(erika.ID, privacy.Corporate), f.device(bob.ID, privacy.Corporate)
		bPhone := f.device(bob.ID, privacy.Personal)
		bLaptop := f.device(bob.ID, privacy.Corporate)
		eSpare := f.device(erika.ID, privacy.Corporate) // retired after her erasure
		for _, d := range []store.Device{eDev, bDev, bPhone, bLaptop, eSpare} {
			f.ingest(deviceInformation(f, d.ID))
		}

		var file bytes.Buffer
		db := st.(*sqlstore.DB)
		if _, err := backup.Create(f.ctx, db, f.sealer, &file, nil); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(file.Bytes(), []byte("iPhone 15")) {
			t.Fatal("the backup body is not encrypted")
		}
		if _, err := f.svc.EraseSubject(f.ctx, f.tenant, erika.ID, "Art 17 request, ticket 7", admin); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.DeprovisionDevice(f.ctx, f.tenant, bPhone.ID, "bob retired his own phone", admin); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.DeprovisionDevice(f.ctx, f.tenant, bLaptop.ID, "the laptop was sold", admin); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.DeprovisionDevice(f.ctx, f.tenant, eSpare.ID, "the spare laptop was sold", admin); err != nil {
			t.Fatal(err)
		}
		if _, err := backup.Restore(f.ctx, db, f.sealer, bytes.NewReader(file.Bytes()), nil); err != nil {
			t.Fatal(err)
		}

		// The restored rows are back, but their keys are not: unreadable.
		q := f.st.Read()
		restored, err := q.Subjects().Get(f.ctx, f.tenant, erika.ID)
		if err != nil || restored.State != store.SubjectActive || restored.Profile == nil {
			t.Fatalf("the backup did not bring the pre-erasure row back: %+v %v", restored, err)
		}
		if _, err := f.svc.OpenProfile(f.ctx, q, restored); err != keys.ErrKeyDestroyed {
			t.Errorf("the restored profile opened (%v)", err)
		}
		if got := f.svc.SubjectStatus(f.ctx, q, restored); got != "erased" {
			t.Errorf("status of the restored person: %s, want erased", got)
		}
		for field, v := range f.view(eDev.ID) {
			if v.Personal && !v.Masked && (v.Value != nil || v.Unreadable != "erased") {
				t.Errorf("restored %s is readable or mislabelled: %+v", field, v)
			}
		}
		// Bob, never erased, restores whole.
		if v := f.view(bDev.ID)["device.serial_number"]; string(v.Value) != `"`+markerSerial+`"` {
			t.Errorf("bob's serial after restore: %+v", v)
		}
		bobRow, _ := q.Subjects().Get(f.ctx, f.tenant, bob.ID)
		if p, err := f.svc.OpenProfile(f.ctx, q, bobRow); err != nil || p.Email != "bob@acme.test" {
			t.Errorf("bob's profile after restore: %+v %v", p, err)
		}

		// Steward finishes the erasure the restore undid.
		n, err := f.svc.ReconcileErasures(f.ctx)
		if err != nil || n != 4 {
			t.Fatalf("reconcile: %d %v (want erika, bob's retired phone, his sold laptop and erika's spare)", n, err)
		}
		for _, d := range []store.Device{bPhone, bLaptop, eSpare} {
			if d, _ := q.Devices().Get(f.ctx, f.tenant, d.ID); d.State != store.DeviceDeprovisioned {
				t.Errorf("bob's %s device that left came back from the backup as %s", d.Ownership, d.State)
			}
		}
		// Erika's corporate laptop lost its person, not its management.
		if d, _ := q.Devices().Get(f.ctx, f.tenant, eDev.ID); d.State == store.DeviceDeprovisioned {
			t.Error("erika's corporate laptop was deprovisioned by the reconciliation; it only lost its person")
		}
		after, _ := q.Subjects().Get(f.ctx, f.tenant, erika.ID)
		if after.State != store.SubjectErased || after.Profile != nil || after.EmailIndex != nil {
			t.Errorf("after reconcile: %+v", after)
		}
		if cur, _ := q.Inventory().Current(f.ctx, f.tenant, eDev.ID); len(cur) != 0 {
			t.Errorf("%d restored values of the erased person remain", len(cur))
		}
		raw := storetest.AllValues(t, st)
		for _, s := range []string{"erika@acme.test", "Erika Mustermann"} {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("the database holds %q", s)
			}
		}
		if n, _ := f.svc.ReconcileErasures(f.ctx); n != 0 {
			t.Errorf("reconcile is not idempotent: %d", n)
		}
	})
}
