package mdm_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestEnrolledAgainWithoutCheckOut: a device erased without a CheckOut
// enrols again under the same UDID. The same person's earlier record of a
// personal device is asked whether it is still there: silent for a day, it
// is deprovisioned and its old identity refused; answering, it stays. A
// claim on another person's device, or on a corporate one, changes nothing
// and is audited on the record it names.
func TestEnrolledAgainWithoutCheckOut(t *testing.T) {
	storetest.ForEachEngine(t, testEnrolledAgainWithoutCheckOut)
}

func testEnrolledAgainWithoutCheckOut(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Personal)
	f.publish(privacy.Corporate)
	ts := f.serve()
	erika, jonas := f.subject("erika@acme.test"), f.subject("jonas@acme.test")

	erased, earlier := f.enrolledAs(ts, "", privacy.Personal, erika)
	if _, err := erased.Poll(f.ctx); err != nil { // the initial inventory
		t.Fatal(err)
	}
	_, again := f.enrolledAs(ts, erased.UDID, privacy.Personal, erika)
	alive, kept := f.enrolledAs(ts, "", privacy.Personal, jonas)
	if _, err := alive.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.enrolledAs(ts, alive.UDID, privacy.Personal, jonas) // a claim the device will answer
	for _, id := range []string{earlier.ID, kept.ID} {
		if got := f.deviceState(id); got != store.DeviceEnrolled {
			t.Fatalf("device %s is %s right after a new enrolment claimed its UDID; want it asked first", id, got)
		}
	}
	if n, err := alive.Poll(f.ctx); err != nil || n != 1 {
		t.Fatalf("the live device answered %d questions (%v); want the one", n, err)
	}
	// Not yet a day: nothing happens.
	if n, err := f.svc.ReplaceSilentRecords(f.ctx, 100); err != nil || n != 0 {
		t.Fatalf("within the day: replaced %d, %v", n, err)
	}
	f.svc.SetClock(func() time.Time { return time.Now().Add(25 * time.Hour) })
	if n, err := f.svc.ReplaceSilentRecords(f.ctx, 100); err != nil || n != 1 {
		t.Fatalf("a day later: replaced %d, %v; want the silent record", n, err)
	}
	if got := f.deviceState(earlier.ID); got != store.DeviceDeprovisioned {
		t.Errorf("the silent earlier record is %s; want it replaced", got)
	}
	if got := f.deviceState(kept.ID); got != store.DeviceEnrolled {
		t.Errorf("the record that answered is %s; want it kept", got)
	}
	if _, err := erased.Poll(f.ctx); status(t, err) != http.StatusForbidden {
		t.Errorf("the replaced identity's check-in: %v; want 403", err)
	}
	entries, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.deprovision", TargetID: earlier.ID})
	if err != nil || len(entries) != 1 || !strings.Contains(entries[0].Reason, again.ID) {
		t.Errorf("deprovisioning audited as %+v, %v; want one entry naming the new device", entries, err)
	}
	if n, err := f.svc.ReplaceSilentRecords(f.ctx, 100); err != nil || n != 0 {
		t.Errorf("settled replacements ran again: %d, %v", n, err)
	}

	// Another person's claim on Erika's new device, and a corporate device
	// claiming another's UDID: both records stay, audited, never asked.
	f.svc.SetClock(time.Now)
	f.enrolledAs(ts, erased.UDID, privacy.Personal, jonas)
	corporate, first := f.enrolledAs(ts, "", privacy.Corporate, "")
	if _, err := corporate.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.enrolledAs(ts, corporate.UDID, privacy.Corporate, "")
	for _, id := range []string{again.ID, first.ID} {
		entries, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.device.enrolled_again", TargetID: id})
		if err != nil || len(entries) != 1 || entries[0].Outcome != "denied" {
			t.Errorf("device %s: claims audited as %+v, %v; want one, denied", id, entries, err)
		}
	}
	if n, err := corporate.Poll(f.ctx); err != nil || n != 0 {
		t.Errorf("the corporate device was asked %d questions (%v); want none", n, err)
	}
}

func (f *fixture) deviceState(id string) string {
	f.t.Helper()
	d, err := f.st.Read().Devices().Get(f.ctx, f.tenant, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return d.State
}
