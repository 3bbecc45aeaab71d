package mdm_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestRetryFinishesAsLateAsAFirstAttempt: a retry that downloaded its
// profile just before the link expired may authenticate after the expiry,
// within the same window as a first attempt would (the challenge's hour and
// the installation's grace), and not after it.
func TestRetryFinishesAsLateAsAFirstAttempt(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	ts := f.serve()
	f.svc.SetClock(func() time.Time { return f.now })
	erika := f.subject("erika@acme.test")
	start := f.now
	_, link, err := f.svc.CreateEnrolment(f.ctx, f.tenant, mdm.EnrolmentInput{Ownership: "personal", SubjectID: erika, TTLHours: 1}, admin)
	if err != nil {
		t.Fatal(err)
	}
	attempt := func() *sim.Device {
		t.Helper()
		d, err := sim.New(ts.Client(), false)
		if err != nil {
			t.Fatal(err)
		}
		d.Personal = true
		if err := d.Prepare(f.ctx, link, false); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if err := attempt().Authenticate(f.ctx); err != nil { // and then its installation fails
		t.Fatal(err)
	}

	f.now = start.Add(58 * time.Minute)
	retry, tooLate := attempt(), attempt()
	f.now = start.Add(61 * time.Minute) // the link expired a minute ago
	if err := retry.Authenticate(f.ctx); err != nil {
		t.Errorf("a retry downloaded before the link expired, authenticating a minute after: %v", err)
	}

	// Past the window, a retry is refused as a first attempt would be.
	if err := retry.Enrol(f.ctx, link, false); err == nil {
		t.Fatal("the retry's device enrolled twice")
	}
	f.now = start.Add(time.Hour + 76*time.Minute)
	if err := tooLate.Authenticate(f.ctx); status(t, err) != http.StatusConflict {
		t.Errorf("a takeover after the installation window closed: %v; want 409", err)
	}
}
