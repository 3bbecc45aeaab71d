package scep

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/smallstep/scep"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func TestPurgeExpiredChallenges(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	settings := st.Read().Settings()
	now := time.Now()
	live, err := issueChallenge(ctx, settings, challengeRecord{TenantID: tenantA, EnrolmentID: "enrol-live", Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for i, expires := range []time.Time{now.Add(-time.Minute), now.Add(-48 * time.Hour), now} {
		if _, err := issueChallenge(ctx, settings, challengeRecord{TenantID: tenantB, EnrolmentID: fmt.Sprint("enrol-", i), Expires: expires}); err != nil {
			t.Fatal(err)
		}
	}
	if err := settings.Put(ctx, challengeKeyPrefix+"unreadable", []byte("{")); err != nil {
		t.Fatal(err)
	}
	if err := settings.Put(ctx, "scep-challenges-are-not-this", []byte("{")); err != nil {
		t.Fatal(err)
	}
	// Issued certificates never used: the expired one's entry goes; the
	// valid one's, and one written before entries held the expiry, stay.
	expired := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: now.Add(-time.Minute)}
	valid := &x509.Certificate{SerialNumber: big.NewInt(2), NotAfter: now.Add(time.Hour)}
	for _, c := range []*x509.Certificate{expired, valid} {
		if err := recordIssued(ctx, settings, tenantA, c, "enrol-issued"); err != nil {
			t.Fatal(err)
		}
	}
	if err := settings.Put(ctx, issuedSettingKey(tenantA, big.NewInt(3)), []byte("enrol-older")); err != nil {
		t.Fatal(err)
	}
	n, err := PurgeExpiredChallenges(ctx, st, now)
	if err != nil || n != 5 {
		t.Fatalf("PurgeExpiredChallenges = %d, %v; want the 3 expired, the unreadable one and the expired certificate's", n, err)
	}
	if _, err := settings.Get(ctx, issuedSettingKey(tenantA, expired.SerialNumber)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the expired certificate's entry survived: %v", err)
	}
	for serial, want := range map[int64]string{2: "enrol-issued", 3: "enrol-older"} {
		if id, err := claimRenewal(ctx, settings, tenantA, big.NewInt(serial)); err != nil || id != want {
			t.Errorf("certificate %d's entry after the purge: %q, %v; want %q", serial, id, err, want)
		}
	}
	if again, err := PurgeExpiredChallenges(ctx, st, now); err != nil || again != 0 {
		t.Fatalf("a second purge = %d, %v; want nothing left to purge", again, err)
	}
	if _, err := settings.Get(ctx, "scep-challenges-are-not-this"); err != nil {
		t.Errorf("the purge deleted a key outside its prefix: %v", err)
	}
	if rec, err := consumeChallenge(ctx, settings, tenantA, live, now); err != nil || rec.EnrolmentID != "enrol-live" || rec.Renewal {
		t.Errorf("the live challenge after the purge: %+v, %v", rec, err)
	}
}

// TestChallengeExpiresByTheServersClock: a challenge's life is counted on
// the clock the server checks it against, not the wall clock.
func TestChallengeExpiresByTheServersClock(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	ra := e.raCert(tenantA)
	e.offset.Store(int64(48 * time.Hour))
	d := newDevice(t, rsaKey(t, 2048))
	if r := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.PKCSReq, subject("d"), e.challenge(tenantA, "enrol-clock"))); r.status != scep.SUCCESS {
		t.Fatalf("a challenge issued an hour before the server's now: %s %s", r.status, r.failInfo)
	}
	renewal, err := IssueRenewalChallenge(context.Background(), e.settings, tenantA, "enrol-clock", 0, e.now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.PKCSReq, subject("d"), renewal)); r.status != scep.SUCCESS || !e.lastIssued().renewal {
		t.Fatalf("a renewal challenge issued an hour before the server's now: %s %s", r.status, r.failInfo)
	}
}
