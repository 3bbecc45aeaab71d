package server

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/backup"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestRestoreUndoesNoDeletionNorRevocation: a backup taken before a
// customer was deleted and a link revoked brings both back; the vault,
// which no backup holds, remembers them, and reconciliation deletes the
// customer again (its Apple keys and its device with it) and revokes the
// link again, each recorded in the audit log.
func TestRestoreUndoesNoDeletionNorRevocation(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		provider := f.tenant
		var link api.NewEnrolmentView
		f.must(201, f.owner, "POST", f.path("/enrolments"), api.EnrolmentRequest{Ownership: "corporate"}, &link)
		customer, phone, phoneID := f.customerWithPhone()

		// The backup holds the customer with its phone still enrolled.
		var file bytes.Buffer
		db := st.(*sqlstore.DB)
		if _, err := backup.Create(f.ctx, db, f.app.Sealer, &file, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := phone.Checkin(f.ctx, phone.CheckOut()); err != nil {
			t.Fatal(err)
		}
		f.must(204, f.owner, "DELETE", "/api/v1/tenants/"+customer.ID, nil, nil)
		f.tenant = provider
		f.must(200, f.owner, "DELETE", f.path("/enrolments/"+link.Enrolment.ID), nil, nil)
		if _, err := backup.Restore(f.ctx, db, f.app.Sealer, bytes.NewReader(file.Bytes()), nil); err != nil {
			t.Fatal(err)
		}

		q := st.Read()
		if _, err := q.Tenants().Get(f.ctx, customer.ID); err != nil {
			t.Fatalf("the backup did not bring the customer back: %v", err)
		}
		if e, err := q.Enrolments().Get(f.ctx, provider, link.Enrolment.ID); err != nil || e.State != store.EnrolmentOpen {
			t.Fatalf("the backup did not bring the link back open: %+v %v", e, err)
		}
		r, err := f.app.ReconcileRestore(f.ctx)
		if err != nil || r.TenantsDeleted != 1 || r.LinksRevoked != 1 {
			t.Fatalf("reconciliation: %+v %v, want one tenant deleted and one link revoked", r, err)
		}

		if _, err := q.Tenants().Get(f.ctx, customer.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the deleted customer is back after reconciliation (%v)", err)
		}
		for _, k := range []string{"scep-ca:" + customer.ID, "scep-issuer:" + customer.ID, "apns-cert:" + customer.ID} {
			if _, err := q.Settings().Get(f.ctx, k); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the deleted customer's %s is back (%v)", k, err)
			}
		}
		if _, err := q.Devices().Get(f.ctx, customer.ID, phoneID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the deleted customer's phone is back (%v)", err)
		}
		var se *sim.StatusError
		if _, err := phone.Poll(f.ctx); !errors.As(err, &se) || se.Status < 400 || se.Status >= 500 || se.Status == 401 {
			t.Errorf("a device of the deleted customer checked in after the restore: %v", err)
		}
		if e, err := q.Enrolments().Get(f.ctx, provider, link.Enrolment.ID); err != nil || e.State != store.EnrolmentRevoked {
			t.Errorf("the revoked link is open after reconciliation: %+v %v", e, err)
		}
		laptop, err := sim.New(f.ts.Client(), false)
		if err != nil {
			t.Fatal(err)
		}
		if err := laptop.Enrol(f.ctx, link.Link, false); err == nil {
			t.Error("a device enrolled with the link revoked after the backup")
		}

		var entries api.List[api.AuditEntryView]
		f.must(200, f.owner, "GET", f.path("/audit?action=tenant.delete"), nil, &entries)
		if len(entries.Items) != 1 || entries.Items[0].ActorType != string(store.ActorSystem) ||
			!bytes.Contains(entries.Items[0].Details, []byte(`"reapplied_after_restore":true`)) {
			t.Errorf("the restored log records the deletion once, again, by Steward: %+v", entries.Items)
		}
		f.must(200, f.owner, "GET", f.path("/audit?action=enrolment.revoke"), nil, &entries)
		if len(entries.Items) != 1 || !bytes.Contains(entries.Items[0].Details, []byte(`"reapplied_after_restore":true`)) {
			t.Errorf("the restored log records the revocation once, again: %+v", entries.Items)
		}

		if r, err := f.app.ReconcileRestore(f.ctx); err != nil || r != (Reconciled{}) {
			t.Errorf("a second reconciliation: %+v %v, want nothing to do", r, err)
		}
	})
}

// TestRacingCreationAfterDeletionIsSwept: a push certificate upload that
// read the customer before its deletion committed can write its key just
// after; the next pass over deleted tenants forgets it.
func TestRacingCreationAfterDeletionIsSwept(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var customer api.TenantView
		f.must(201, f.owner, "POST", f.path("/customers"), api.TenantCreateRequest{Name: "Leaving Customer"}, &customer)
		f.must(204, f.owner, "DELETE", "/api/v1/tenants/"+customer.ID, nil, nil)
		late := "apns-cert:" + customer.ID
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			if err := q.PrivacySettings().Put(f.ctx, customer.ID, []byte("{}"), 0, time.Now()); err != nil {
				return err
			}
			return q.Settings().Put(f.ctx, late, []byte("{}"))
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := f.app.IAM.ReconcileDeletedTenants(f.ctx); err != nil || n != 0 {
			t.Fatalf("sweep: %d %v, want no tenant deleted again", n, err)
		}
		if _, err := st.Read().Settings().Get(f.ctx, late); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the key written after the deletion is still stored (%v)", err)
		}
		if _, _, err := st.Read().PrivacySettings().Get(f.ctx, customer.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the settings written after the deletion are still stored (%v)", err)
		}
	})
}

// TestNodesReconcilingAtOnce: every node reconciles at start (and the
// tenant pass every hour); nodes running it together over the same
// restored customers and links delete or revoke each once, and none
// reports the others' work as a failure.
func TestNodesReconcilingAtOnce(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var ids, links []string
		for i := range 6 {
			var c api.TenantView
			f.must(201, f.owner, "POST", f.path("/customers"), api.TenantCreateRequest{Name: fmt.Sprintf("Customer %d", i)}, &c)
			ids = append(ids, c.ID)
			var link api.NewEnrolmentView
			f.must(201, f.owner, "POST", f.path("/enrolments"), api.EnrolmentRequest{Ownership: "corporate"}, &link)
			links = append(links, link.Enrolment.ID)
		}
		var file bytes.Buffer
		db := st.(*sqlstore.DB)
		if _, err := backup.Create(f.ctx, db, f.app.Sealer, &file, nil); err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			f.must(204, f.owner, "DELETE", "/api/v1/tenants/"+id, nil, nil)
			f.must(200, f.owner, "DELETE", f.path("/enrolments/"+links[i]), nil, nil)
		}
		if _, err := backup.Restore(f.ctx, db, f.app.Sealer, bytes.NewReader(file.Bytes()), nil); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		tenants, tenantErrs := make([]int, 3), make([]error, 3)
		revoked, linkErrs := make([]int, 3), make([]error, 3)
		for i := range tenants {
			wg.Go(func() { tenants[i], tenantErrs[i] = f.app.IAM.ReconcileDeletedTenants(f.ctx) })
			wg.Go(func() { revoked[i], linkErrs[i] = f.app.MDM.ReconcileRevokedLinks(f.ctx) })
		}
		wg.Wait()
		if err := errors.Join(tenantErrs...); err != nil || tenants[0]+tenants[1]+tenants[2] != len(ids) {
			t.Fatalf("three passes at once deleted %v tenants (want %d in all): %v", tenants, len(ids), err)
		}
		if err := errors.Join(linkErrs...); err != nil || revoked[0]+revoked[1]+revoked[2] != len(links) {
			t.Fatalf("three passes at once revoked %v links (want %d in all): %v", revoked, len(links), err)
		}
		for i, id := range ids {
			if _, err := st.Read().Tenants().Get(f.ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("customer %s is back (%v)", id, err)
			}
			if e, err := st.Read().Enrolments().Get(f.ctx, f.tenant, links[i]); err != nil || e.State != store.EnrolmentRevoked {
				t.Errorf("link %s is %s (%v)", links[i], e.State, err)
			}
		}
	})
}

// TestRestoreKeepsThePINsDrawnSinceTheBackup: a Mac locked after the backup
// was taken asks for a PIN the restored database never held. The PINs read
// before the restore and missing after it are kept as departed PINs, found
// by the device or the serial number and read with a reason as a departed
// Mac's are; one kept already for a Mac that left keeps its serial
// number's index. A PIN the backup holds stays on its action, and an
// employee's own Mac keeps none, as at a departure.
func TestRestoreKeepsThePINsDrawnSinceTheBackup(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		lock := func(d *sim.Device, id, pin string) {
			t.Helper()
			f.must(201, f.owner, "POST", f.path("/devices/"+id+"/actions"), api.DeviceActionRequest{Action: actions.Lock,
				Reason: "left in a taxi, ticket 4711", Options: actions.Options{PIN: pin}}, nil)
			f.poll(d)
		}
		intelMac := func(d *sim.Device) { mac(d); d.IntelMac = true }
		erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		before, beforeID := f.enrol("corporate", "", "", intelMac)
		after, afterID := f.enrol("corporate", "", "", intelMac)
		left, leftID := f.enrol("corporate", "", "", intelMac)
		own, ownID := f.enrol("personal", erika.ID, "", intelMac)
		lock(before, beforeID, "112233")
		var file bytes.Buffer
		db := st.(*sqlstore.DB)
		if _, err := backup.Create(f.ctx, db, f.app.Sealer, &file, nil); err != nil {
			t.Fatal(err)
		}
		lock(after, afterID, "445566")
		lock(own, ownID, "998877")
		lock(left, leftID, "778899")
		f.must(201, f.owner, "POST", f.path("/devices/"+leftID+"/actions"), api.DeviceActionRequest{Action: actions.Delete,
			Reason: "written off while locked, ticket 4712"}, nil)

		pins, err := f.app.Actions.PINsBeforeRestore(f.ctx)
		if err != nil || len(pins) != 3 {
			t.Fatalf("PINs read before the restore: %d, %v; want the company Macs' three", len(pins), err)
		}
		if _, err := backup.Restore(f.ctx, db, f.app.Sealer, bytes.NewReader(file.Bytes()), nil); err != nil {
			t.Fatal(err)
		}
		if n, err := f.app.Actions.KeepPINsAfterRestore(f.ctx, pins); err != nil || n != 2 {
			t.Fatalf("PINs kept after the restore: %d, %v; want the two drawn since the backup", n, err)
		}
		var kept api.List[api.DepartedPINView]
		f.must(200, f.owner, "GET", f.path("/departed-pins"), nil, &kept)
		if len(kept.Items) != 2 {
			t.Fatalf("departed PINs after the restore: %+v; want the locks of %s and %s", kept.Items, afterID, leftID)
		}
		for _, c := range []struct {
			query, deviceID, pin string
		}{{"?device_id=" + afterID, afterID, "445566"}, {"?serial_number=" + url.QueryEscape(left.Serial), leftID, "778899"}} {
			var found api.List[api.DepartedPINView]
			f.must(200, f.owner, "GET", f.path("/departed-pins"+c.query), nil, &found)
			if len(found.Items) != 1 || found.Items[0].DeviceID != c.deviceID || found.Items[0].Action != "lock" {
				t.Fatalf("the PIN kept for %s: %+v", c.query, found.Items)
			}
			var got api.ActionPINView
			f.must(200, f.owner, "POST", f.path("/departed-pins/"+found.Items[0].ActionID+"/pin"),
				api.ActionPINRequest{Reason: "the Mac was handed in at reception"}, &got)
			if got.PIN != c.pin {
				t.Errorf("the PIN kept across the restore for %s reads %q, want %s", c.query, got.PIN, c.pin)
			}
		}
		if n, err := f.app.Actions.KeepPINsAfterRestore(f.ctx, pins); err != nil || n != 0 {
			t.Errorf("keeping the same PINs again: %d, %v; want none", n, err)
		}
	})
}
