package mdm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestEnrolledAgainWithoutCheckOut: a device erased without a CheckOut
// enrols again under the same UDID. The same person's earlier record of a
// personal device is deprovisioned, and its old identity is refused; a
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

	before, earlier := f.enrolled(ts, privacy.Personal, erika)
	_, erased := f.enrolledAs(ts, before.UDID, privacy.Personal, erika)
	if got := f.deviceState(earlier.ID); got != store.DeviceDeprovisioned {
		t.Fatalf("the same person's earlier record is %s; want it replaced", got)
	}
	if ch, _ := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, earlier.ID); !ch.CheckedOut {
		t.Error("the replaced record's channel is still open")
	}
	var status *sim.StatusError
	if _, err := before.Poll(f.ctx); !errors.As(err, &status) || status.Status == 401 {
		t.Errorf("the replaced identity's check-in: %v; want a refusal other than 401", err)
	}
	entries, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.deprovision", TargetID: earlier.ID})
	if err != nil || len(entries) != 1 || !strings.Contains(entries[0].Reason, erased.ID) {
		t.Errorf("deprovisioning audited as %+v, %v; want one entry naming the new device", entries, err)
	}

	// Another person's claim on Erika's device, and a second corporate
	// device claiming a first one's UDID: both records stay.
	f.enrolledAs(ts, before.UDID, privacy.Personal, jonas)
	corporate, first := f.enrolled(ts, privacy.Corporate, "")
	f.enrolledAs(ts, corporate.UDID, privacy.Corporate, "")
	for _, kept := range []string{erased.ID, first.ID} {
		if got := f.deviceState(kept); got != store.DeviceEnrolled {
			t.Errorf("device %s is %s after another enrolment claimed its UDID; want it kept", kept, got)
		}
		entries, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.device.enrolled_again", TargetID: kept})
		if err != nil || len(entries) != 1 {
			t.Errorf("device %s: claims audited as %+v, %v; want one", kept, entries, err)
		}
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
