package mdm_test

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestEnrolledAgainWithoutCheckOut: a device erased without a CheckOut
// enrols again under the same UDID. The same person's earlier records of a
// personal device (all of them, after several erasures) are asked whether
// they are still there: three days with a push delivered and no sign of
// life, they are deprovisioned and their old identities refused; one that
// checks in stays; one whose pushes fail waits. A claim on another
// person's device, or on a corporate one, changes nothing and is audited.
func TestEnrolledAgainWithoutCheckOut(t *testing.T) {
	storetest.ForEachEngine(t, testEnrolledAgainWithoutCheckOut)
}

func testEnrolledAgainWithoutCheckOut(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Personal)
	f.publish(privacy.Corporate)
	ts := f.serve()
	erika, jonas, mia := f.subject("erika@acme.test"), f.subject("jonas@acme.test"), f.subject("mia@acme.test")

	// Erika's phone, erased twice.
	erased, first := f.enrolledAs(ts, "", privacy.Personal, erika)
	if _, err := erased.Poll(f.ctx); err != nil { // the initial inventory
		t.Fatal(err)
	}
	_, second := f.enrolledAs(ts, erased.UDID, privacy.Personal, erika)
	_, third := f.enrolledAs(ts, erased.UDID, privacy.Personal, erika)
	// Jonas's phone, claimed while it is still there.
	alive, kept := f.enrolledAs(ts, "", privacy.Personal, jonas)
	if _, err := alive.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.enrolledAs(ts, alive.UDID, privacy.Personal, jonas)
	if n, err := alive.Poll(f.ctx); err != nil || n != 1 {
		t.Fatalf("the live device answered %d questions (%v); want the one", n, err)
	}
	// Mia's tablet, gone long ago, its queue full of what was sent its way.
	full, stale := f.enrolledAs(ts, "", privacy.Personal, mia)
	for i := 0; i < 97; i++ { // and the initial inventory's three
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{stale.ID}, mdmproto.ProfileList{}, "", admin); err != nil {
			t.Fatal(err)
		}
	}
	f.enrolledAs(ts, full.UDID, privacy.Personal, mia) // a full queue must not fail this enrolment

	for _, id := range []string{first.ID, second.ID, kept.ID, stale.ID} {
		if got := f.deviceState(id); got != store.DeviceEnrolled {
			t.Fatalf("device %s is %s right after a new enrolment claimed its UDID; want it asked first", id, got)
		}
	}
	if n, err := f.svc.ReplaceSilentRecords(f.ctx, 100); err != nil || n != 0 {
		t.Fatalf("within three days: replaced %d, %v", n, err)
	}
	f.pushDelivered(first.ID, second.ID, kept.ID) // Mia's tablet's pushes fail
	f.svc.SetClock(func() time.Time { return time.Now().Add(73 * time.Hour) })
	if n, err := f.svc.ReplaceSilentRecords(f.ctx, 100); err != nil || n != 2 {
		t.Fatalf("three days later: replaced %d, %v; want Erika's two silent records", n, err)
	}
	for id, want := range map[string]string{first.ID: store.DeviceDeprovisioned, second.ID: store.DeviceDeprovisioned,
		third.ID: store.DeviceEnrolled, kept.ID: store.DeviceEnrolled, stale.ID: store.DeviceEnrolled} {
		if got := f.deviceState(id); got != want {
			t.Errorf("device %s is %s; want %s", id, got, want)
		}
	}
	if _, err := erased.Poll(f.ctx); status(t, err) != http.StatusForbidden {
		t.Errorf("the replaced identity's check-in: %v; want 403", err)
	}
	entries, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.deprovision", TargetID: first.ID})
	if err != nil || len(entries) != 1 || !strings.Contains(entries[0].Reason, third.ID) {
		t.Errorf("deprovisioning audited as %+v, %v; want one entry naming the newest device", entries, err)
	}
	// Once APNs takes a push for Mia's tablet, its silence counts.
	f.pushDelivered(stale.ID)
	if n, err := f.svc.ReplaceSilentRecords(f.ctx, 100); err != nil || n != 1 || f.deviceState(stale.ID) != store.DeviceDeprovisioned {
		t.Errorf("after a push reached APNs: replaced %d, %v; want Mia's tablet", n, err)
	}
	if n, err := f.svc.ReplaceSilentRecords(f.ctx, 100); err != nil || n != 0 {
		t.Errorf("settled replacements ran again: %d, %v", n, err)
	}

	// Another person's claim on Erika's phone, and a corporate device
	// claiming another's UDID: both records stay, audited, never asked.
	f.svc.SetClock(time.Now)
	f.enrolledAs(ts, erased.UDID, privacy.Personal, jonas)
	corporate, other := f.enrolledAs(ts, "", privacy.Corporate, "")
	if _, err := corporate.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.enrolledAs(ts, corporate.UDID, privacy.Corporate, "")
	for id, outcomes := range map[string][]string{third.ID: {"denied"}, other.ID: {"denied"}, kept.ID: {"success", "denied"}} {
		entries, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.device.enrolled_again", TargetID: id})
		var got []string
		for _, e := range entries {
			got = append(got, e.Outcome)
		}
		if err != nil || !slices.Equal(got, outcomes) {
			t.Errorf("device %s: claims audited as %v, %v; want %v", id, got, err, outcomes)
		}
	}
	if n, err := corporate.Poll(f.ctx); err != nil || n != 0 {
		t.Errorf("the corporate device was asked %d questions (%v); want none", n, err)
	}
}

// pushDelivered records, as the pusher does, that APNs took a push for
// each device.
func (f *fixture) pushDelivered(deviceIDs ...string) {
	f.t.Helper()
	for _, id := range deviceIDs {
		if err := f.st.Tx(f.ctx, func(q store.Queries) error {
			ch, err := q.AppleChannels().Get(f.ctx, f.tenant, id)
			if err != nil {
				return err
			}
			return q.AppleChannels().PushDone(f.ctx, f.tenant, id, ch.PushDueAt, time.Time{}, 0, nil)
		}); err != nil {
			f.t.Fatal(err)
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

// TestEnrolledAgainWhilePushesAreRefused: a push refused before it reaches
// APNs (a 404 from a misconfigured endpoint or proxy) is no evidence that
// the earlier record is gone, though it leaves nothing due: the record
// stays undecided, and is pushed again, until APNs takes a push.
func TestEnrolledAgainWhilePushesAreRefused(t *testing.T) {
	storetest.ForEachEngine(t, testEnrolledAgainWhilePushesAreRefused)
}

func testEnrolledAgainWhilePushesAreRefused(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Personal)
	ts := f.serve()
	if _, err := f.svc.SetPushCertificate(f.ctx, f.tenant, pushCertPEM(t, testTopic), "", false, admin); err != nil {
		t.Fatal(err)
	}
	erika := f.subject("erika@acme.test")
	erased, earlier := f.enrolledAs(ts, "", privacy.Personal, erika)
	if _, err := erased.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.enrolledAs(ts, erased.UDID, privacy.Personal, erika) // asks the earlier record, and pushes it

	var accepting atomic.Bool
	pusher := startAPNs(t, f, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !accepting.Load() {
			http.Error(w, `{"reason":"BadPath"}`, http.StatusNotFound)
		}
	}))
	if n, err := pusher.RunOnce(f.ctx); err != nil || n != 0 {
		t.Fatalf("pushes through a refusing endpoint: %d delivered, %v", n, err)
	}
	f.svc.SetClock(func() time.Time { return time.Now().Add(73 * time.Hour) })
	if n, err := f.svc.ReplaceSilentRecords(f.ctx, 100); err != nil || n != 0 || f.deviceState(earlier.ID) != store.DeviceEnrolled {
		t.Fatalf("three days of refused pushes: replaced %d, %v; want the earlier record kept, undecided", n, err)
	}
	ch, err := st.Read().AppleChannels().Get(f.ctx, f.tenant, earlier.ID)
	if err != nil || ch.PushDueAt.IsZero() {
		t.Fatalf("the undecided record's channel: %+v, %v; want a push due again", ch, err)
	}

	accepting.Store(true) // the endpoint is mended
	if n, err := pusher.RunOnce(f.ctx); err != nil || n != 1 {
		t.Fatalf("pushes once the endpoint is mended: %d delivered, %v; want the earlier record's", n, err)
	}
	if n, err := f.svc.ReplaceSilentRecords(f.ctx, 100); err != nil || n != 1 || f.deviceState(earlier.ID) != store.DeviceDeprovisioned {
		t.Errorf("after APNs took a push: replaced %d, %v; want the silent earlier record", n, err)
	}
}
