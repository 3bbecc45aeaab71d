package scep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
		ra := e.raCert(tenant)
		cert, key := e.enrolled(t, tenant, "device-1")
		d := renewer(t, cert, key)
		if r := d.enrol(t, e.url(tenant), ca, d.request(t, ra, scep.RenewalReq, subject("device-1"), "")); r.status != scep.SUCCESS {
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

// TestForgetTenantDeletesItsChallengesAndResends: challenges, and the
// certificates kept for resends of redeemed ones, are keyed by the
// challenge's hash rather than by tenant. ForgetTenant finds the tenant's
// among every tenant's, beyond the first page of them, and leaves the
// others'.
func TestForgetTenantDeletesItsChallengesAndResends(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	const unused = 300 // per tenant: more than one page (500) in all
	for _, tenant := range []string{tenantA, tenantB} {
		e.enrolled(t, tenant, "device-1") // a redeemed challenge, kept for resends
		for i := range unused {
			e.challenge(tenant, fmt.Sprintf("enrol-unused-%d", i))
		}
	}
	if err := ForgetTenant(ctx, e.settings, tenantA); err != nil {
		t.Fatal(err)
	}
	for prefix, wantB := range map[string]int{challengeKeyPrefix: unused, redeemedKeyPrefix: 1} {
		left := e.recordsByTenant(t, prefix)
		if left[tenantA] != 0 {
			t.Errorf("%d of the forgotten tenant's records under %s survived ForgetTenant", left[tenantA], prefix)
		}
		if left[tenantB] != wantB {
			t.Errorf("%d of another tenant's records under %s are left, want %d", left[tenantB], prefix, wantB)
		}
	}
}

// recordsByTenant counts the records under prefix by their tenant.
func (e *testEnv) recordsByTenant(t *testing.T, prefix string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for after := ""; ; {
		page, err := e.settings.ListPrefix(context.Background(), prefix, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return counts
		}
		after = page[len(page)-1].Key
		for _, s := range page {
			var owner struct {
				TenantID string `json:"tenant"`
			}
			if err := json.Unmarshal(s.Value, &owner); err != nil {
				t.Fatalf("%s: %v", s.Key, err)
			}
			counts[owner.TenantID]++
		}
	}
}
