package scep

import (
	"context"
	"fmt"
	"testing"
	"time"

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
	if rec, err := consumeChallenge(ctx, settings, tenantA, live, now); err != nil || rec.EnrolmentID != "enrol-live" || rec.Renewal {
		t.Errorf("the live challenge after the purge: %+v, %v", rec, err)
	}
}
