package scep

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/smallstep/scep"

	"github.com/steward-mdm/steward/internal/store"
)

func TestForgetTenantDeletesOnlyItsKeys(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	keys := map[string][]string{}
	for _, tenant := range []string{tenantA, tenantB} {
		ca := e.cas[tenant].Certificate()
		cert, key := e.enrolled(t, tenant, "device-1")
		d := renewer(t, cert, key)
		if r := d.enrol(t, e.url(tenant), ca, d.request(t, ca, scep.RenewalReq, subject("device-1"), "")); r.status != scep.SUCCESS {
			t.Fatalf("%s: renewal %s", tenant, r.status)
		}
		keys[tenant] = []string{caSettingKey(tenant), issuerSettingKey(tenant), raSettingKey(tenant, raGeneration(time.Now())),
			issuedSettingKey(tenant, e.lastIssued().cert.SerialNumber), renewedSettingKey(tenant, cert.SerialNumber)}
	}
	if err := ForgetTenant(ctx, e.settings, tenantA); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys[tenantA] {
		if _, err := e.settings.Get(ctx, k); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s survived ForgetTenant (%v)", k, err)
		}
	}
	for _, k := range keys[tenantB] {
		if _, err := e.settings.Get(ctx, k); err != nil {
			t.Errorf("another tenant's %s went: %v", k, err)
		}
	}
	if err := ForgetTenant(ctx, e.settings, tenantA); err != nil {
		t.Errorf("forgetting a tenant twice: %v", err)
	}
}
