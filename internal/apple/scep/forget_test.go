package scep

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/smallstep/scep"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func TestForgetTenantDeletesOnlyItsKeys(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	keys := map[string][]string{}
	for _, tenant := range []string{tenantA, tenantB} {
		ca := e.cas[tenant].Certificate()
		d := newDevice(t, rsaKey(t, 2048))
		if r := d.enrol(t, e.url(tenant), ca, d.request(t, ca, scep.PKCSReq, subject("device-1"), e.challenge(tenant, "enrol-1"))); r.status != scep.SUCCESS {
			t.Fatalf("%s: enrolment %s", tenant, r.status)
		}
		keys[tenant] = []string{caSettingKey(tenant), issuerSettingKey(tenant), raSettingKey(tenant, raGeneration(time.Now())),
			issuedSettingKey(tenant, e.lastIssued().cert.SerialNumber)}
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

func TestPurgeExpiredChallenges(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	settings := st.Read().Settings()
	now := time.Now()
	live, err := issueChallenge(ctx, settings, tenantA, "enrol-live", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i, expires := range []time.Time{now.Add(-time.Minute), now.Add(-48 * time.Hour), now} {
		if _, err := issueChallenge(ctx, settings, tenantB, fmt.Sprint("enrol-", i), expires); err != nil {
			t.Fatal(err)
		}
	}
	if err := settings.Put(ctx, challengeKeyPrefix+"unreadable", []byte("{")); err != nil {
		t.Fatal(err)
	}
	if err := settings.Put(ctx, "scep-challenges-are-not-this", []byte("{")); err != nil {
		t.Fatal(err)
	}
	n, err := PurgeExpiredChallenges(ctx, st, now)
	if err != nil || n != 4 {
		t.Fatalf("PurgeExpiredChallenges = %d, %v; want the 3 expired and the unreadable one", n, err)
	}
	if again, err := PurgeExpiredChallenges(ctx, st, now); err != nil || again != 0 {
		t.Fatalf("a second purge = %d, %v; want nothing left to purge", again, err)
	}
	if _, err := settings.Get(ctx, "scep-challenges-are-not-this"); err != nil {
		t.Errorf("the purge deleted a key outside its prefix: %v", err)
	}
	if enrolment, err := consumeChallenge(ctx, settings, tenantA, live, now); err != nil || enrolment != "enrol-live" {
		t.Errorf("the live challenge after the purge: %q, %v", enrolment, err)
	}
}
