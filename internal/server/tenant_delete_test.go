package server

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestDeletingACustomerForgetsItsDevicesAndKeys: an MSP cannot delete a
// customer whose devices are still managed; once they have left, deleting
// the customer takes its CA and push keys, its key vault and its devices'
// records with it, and its old devices are refused.
func TestDeletingACustomerForgetsItsDevicesAndKeys(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		provider := f.tenant
		customer, phone, phoneID := f.customerWithPhone()
		settings := st.Read().Settings()
		tenantKeys := []string{"scep-ca:" + customer.ID, "scep-issuer:" + customer.ID, "apns-cert:" + customer.ID}
		for _, k := range tenantKeys {
			if _, err := settings.Get(f.ctx, k); err != nil {
				t.Fatalf("before deletion, %s: %v", k, err)
			}
		}

		if r := f.do(f.owner, "DELETE", "/api/v1/tenants/"+customer.ID, nil); r.status != 409 {
			t.Fatalf("deleting a customer with a managed device: %d %s", r.status, r.body)
		}
		if _, err := phone.Checkin(f.ctx, phone.CheckOut()); err != nil {
			t.Fatal(err)
		}
		f.must(204, f.owner, "DELETE", "/api/v1/tenants/"+customer.ID, nil, nil)

		for _, k := range tenantKeys {
			if _, err := settings.Get(f.ctx, k); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("after deletion, %s is still stored (%v)", k, err)
			}
		}
		if _, err := st.Read().Keys().GetKeyset(f.ctx, customer.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the deleted customer's key vault is still stored (%v)", err)
		}
		if _, err := st.Read().Devices().Get(f.ctx, customer.ID, phoneID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the deleted customer's device is still stored (%v)", err)
		}
		var se *sim.StatusError
		if _, err := phone.Poll(f.ctx); !errors.As(err, &se) || se.Status < 400 || se.Status >= 500 || se.Status == 401 {
			t.Errorf("a device of the deleted customer checked in: %v", err)
		}
		f.tenant = provider
		var entries api.List[api.AuditEntryView]
		f.must(200, f.owner, "GET", f.path("/audit?action=tenant.delete"), nil, &entries)
		if len(entries.Items) != 1 || entries.Items[0].TargetID != customer.ID {
			t.Errorf("the deletion is not in the provider's audit log: %+v", entries.Items)
		}
	})
}

// customerWithPhone creates a customer tenant with a notice, a push
// certificate and one enrolled corporate phone, and leaves the fleet
// working in it.
func (f *testFleet) customerWithPhone() (api.TenantView, *sim.Device, string) {
	f.t.Helper()
	var customer api.TenantView
	f.must(201, f.owner, "POST", f.path("/customers"), api.TenantCreateRequest{Name: "Leaving Customer"}, &customer)
	f.tenant = customer.ID
	f.must(201, f.owner, "POST", f.path("/privacy/notices"), api.NoticeRequest{Ownership: "corporate",
		Translations: []privacy.Translation{{Language: "en", Title: "Devices", Body: "What we manage."}}}, nil)
	pem, err := sim.PushCertificatePEM("com.apple.mgmt.External." + uuid.NewString())
	if err != nil {
		f.t.Fatal(err)
	}
	f.must(200, f.owner, "PUT", f.path("/apple/push-certificate"), api.PushCertificateRequest{Certificate: base64.StdEncoding.EncodeToString(pem)}, nil)
	phone, phoneID := f.enrol("corporate", "", "", nil)
	return customer, phone, phoneID
}
