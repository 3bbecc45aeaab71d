package privacy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestLongerRetentionWaitsForApprovalAndTheOwnersAcceptance: one admin
// lengthening a period only asks a second; once approved, a personal
// device keeps new values for the period its owner accepted until they
// accept the notice the change published, and a corporate device gets
// the longer period at once.
func TestLongerRetentionWaitsForApprovalAndTheOwnersAcceptance(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		byod := f.device(erika.ID, privacy.Personal)
		laptop := f.device(f.person("max@acme.test").ID, privacy.Corporate)
		f.shortenRetention(map[privacy.Category]int{privacy.Hardware: 10})
		f.publishNotice(privacy.Personal)
		f.accept(erika.ID, 1)

		res, err := f.svc.SetRetention(f.ctx, f.tenant, map[privacy.Category]int{privacy.Hardware: 20}, "asset audits need a longer history", admin.ID, admin)
		if err != nil {
			t.Fatal(err)
		}
		if res.Applied || res.Approval == nil || res.Approval.Kind != privacy.ApprovalKindRetention {
			t.Fatalf("one admin lengthening hardware retention: %+v, want it parked for approval", res)
		}
		if got := f.settings().Retention(privacy.Hardware); got != 10*day {
			t.Fatalf("hardware retention while the lengthening awaits approval: %v, want 10 days", got)
		}
		if _, err := f.svc.DecidePolicyChange(f.ctx, f.tenant, res.Approval.ID, privacy.DecideInput{Approve: true}, admin.ID, admin); !apperr.IsKind(err, apperr.KindForbidden) {
			t.Fatalf("the requester approving their own lengthening: %v, want forbidden", err)
		}
		second := iam.Actor{Type: store.ActorAdmin, ID: "admin-2"}
		decided, err := f.svc.DecidePolicyChange(f.ctx, f.tenant, res.Approval.ID, privacy.DecideInput{Approve: true}, second.ID, second)
		if err != nil || !decided.Applied || decided.RetentionDays[privacy.Hardware] != 20 {
			t.Fatalf("the second admin approving: %+v, %v", decided, err)
		}
		settings := f.settings()
		if settings.Retention(privacy.Hardware) != 20*day || settings.NoticeVersions[privacy.Personal] != 2 {
			t.Fatalf("after approval: hardware kept %v, personal notice version %d; want 20 days and version 2",
				settings.Retention(privacy.Hardware), settings.NoticeVersions[privacy.Personal])
		}
		notice, err := f.svc.CurrentNotice(f.ctx, f.tenant, privacy.Personal, "en")
		if err != nil || !strings.Contains(notice.Body, "for longer") || !strings.Contains(notice.Body, "Kept 20 days.") {
			t.Fatalf("notice version 2 does not say hardware is kept longer: %q, %v", notice.Body, err)
		}

		f.now = f.now.Add(time.Hour)
		f.ingest(deviceInformation(f, byod.ID))
		f.ingest(deviceInformation(f, laptop.ID))
		if got := f.expiry(byod.ID, "hardware.model"); !got.Equal(f.now.Add(10 * day)) {
			t.Errorf("Erika's model before she accepted version 2 expires %v, want 10 days on (%v)", got, f.now.Add(10*day))
		}
		if got := f.expiry(laptop.ID, "hardware.model"); !got.Equal(f.now.Add(20 * day)) {
			t.Errorf("the corporate laptop's model expires %v, want 20 days on (%v)", got, f.now.Add(20*day))
		}

		f.accept(erika.ID, 2)
		f.now = f.now.Add(time.Hour)
		f.ingest(deviceInformation(f, byod.ID))
		if got := f.expiry(byod.ID, "hardware.model"); !got.Equal(f.now.Add(20 * day)) {
			t.Errorf("Erika's model after she accepted version 2 expires %v, want 20 days on (%v)", got, f.now.Add(20*day))
		}
	})
}

// TestShorteningBindsAcceptedNotices: a shortening applies to every notice
// version too, so a later lengthening does not give a device whose owner
// accepted under the shorter period (with no new version between) the
// longer one its version was published with.
func TestShorteningBindsAcceptedNotices(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		byod := f.device(erika.ID, privacy.Personal)
		f.shortenRetention(map[privacy.Category]int{privacy.Hardware: 90})
		f.publishNotice(privacy.Personal)
		f.shortenRetention(map[privacy.Category]int{privacy.Hardware: 30}) // the summary now says 30 days
		f.accept(erika.ID, 1)
		f.lengthenRetention(map[privacy.Category]int{privacy.Hardware: 60})

		f.now = f.now.Add(time.Hour)
		f.ingest(deviceInformation(f, byod.ID))
		if got := f.expiry(byod.ID, "hardware.model"); !got.Equal(f.now.Add(30 * day)) {
			t.Errorf("Erika's model, accepted at 30 days, expires %v, want 30 days on (%v)", got, f.now.Add(30*day))
		}
	})
}

// TestNarrowingBindsAcceptedNotices: a narrowing applies to every notice
// version too, so a later widening does not reach a device whose owner
// accepted an older version after the narrowing.
func TestNarrowingBindsAcceptedNotices(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		byod := f.device(erika.ID, privacy.Personal)
		f.publishNotice(privacy.Personal)
		if res, err := f.svc.RequestPolicyChange(f.ctx, f.tenant, privacy.PolicyChangeInput{Reason: "no hardware facts of personal devices",
			Changes: []privacy.Change{{Ownership: privacy.Personal, Category: privacy.Hardware, Mode: privacy.Drop}}}, admin.ID, admin); err != nil || !res.Applied {
			t.Fatalf("narrowing: %+v, %v", res, err)
		}
		f.accept(erika.ID, 1) // the summary she read says hardware is not collected
		f.widen(privacy.Change{Ownership: privacy.Personal, Category: privacy.Hardware, Mode: privacy.Show})

		f.ingest(deviceInformation(f, byod.ID))
		cur, err := f.st.Read().Inventory().Current(f.ctx, f.tenant, byod.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range cur {
			if v.Category == string(privacy.Hardware) {
				t.Errorf("%s stored on Erika's phone before she accepted the widening", v.Field)
			}
		}
	})
}

// TestShorterRetentionAppliesAtOnce: one admin shortening a period needs
// nobody else, publishes no notice, and reaches stored and new values on
// personal devices at once, whatever period their owner accepted.
func TestShorterRetentionAppliesAtOnce(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		byod := f.device(erika.ID, privacy.Personal)
		f.shortenRetention(map[privacy.Category]int{privacy.Hardware: 20})
		f.publishNotice(privacy.Personal)
		f.accept(erika.ID, 1)
		f.ingest(deviceInformation(f, byod.ID))
		collected := f.now

		res := f.shortenRetention(map[privacy.Category]int{privacy.Hardware: 5})
		if res.Settings.Retention(privacy.Hardware) != 5*day || res.Settings.NoticeVersions[privacy.Personal] != 1 {
			t.Fatalf("after shortening: hardware kept %v, personal notice version %d; want 5 days and version 1",
				res.Settings.Retention(privacy.Hardware), res.Settings.NoticeVersions[privacy.Personal])
		}
		if got := f.expiry(byod.ID, "hardware.model"); !got.Equal(collected.Add(5 * day)) {
			t.Errorf("the stored model expires %v, want 5 days after it was collected (%v)", got, collected.Add(5*day))
		}
		f.now = f.now.Add(time.Hour)
		f.ingest(deviceInformation(f, byod.ID))
		if got := f.expiry(byod.ID, "hardware.model"); !got.Equal(f.now.Add(5 * day)) {
			t.Errorf("a model collected after shortening expires %v, want 5 days on (%v)", got, f.now.Add(5*day))
		}
	})
}

// TestNoticesFromBeforeRetentionSnapshotsAreHeldToTheDefault: a notice
// version kept before Steward recorded its retention counts as the
// stricter of the default period and the current one.
func TestNoticesFromBeforeRetentionSnapshotsAreHeldToTheDefault(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		byod := f.device(erika.ID, privacy.Personal)
		laptop := f.device(f.person("max@acme.test").ID, privacy.Corporate)
		f.publishNotice(privacy.Personal)
		f.lengthenRetention(map[privacy.Category]int{privacy.UsageLogs: 60})
		f.accept(erika.ID, 2)
		f.forgetNoticeRetention()

		f.now = f.now.Add(time.Hour)
		for _, d := range []store.Device{byod, laptop} {
			f.ingest(privacy.Report{TenantID: f.tenant, DeviceID: d.ID, Source: "test/logs", At: f.now,
				Values: []privacy.Observation{{Field: "usage.diagnostic_log", Value: "panic at 03:12"}}})
		}
		if got := f.expiry(byod.ID, "usage.diagnostic_log"); !got.Equal(f.now.Add(30 * day)) {
			t.Errorf("Erika's log expires %v, want the default 30 days on (%v)", got, f.now.Add(30*day))
		}
		if got := f.expiry(laptop.ID, "usage.diagnostic_log"); !got.Equal(f.now.Add(60 * day)) {
			t.Errorf("the corporate laptop's log expires %v, want 60 days on (%v)", got, f.now.Add(60*day))
		}
	})
}

const day = 24 * time.Hour

// shortenRetention applies a retention change that only shortens, which
// one admin may do.
func (f *fixture) shortenRetention(days map[privacy.Category]int) privacy.RetentionChangeResult {
	f.t.Helper()
	res, err := f.svc.SetRetention(f.ctx, f.tenant, days, "keep less for less long", admin.ID, admin)
	if err != nil || !res.Applied || res.Approval != nil {
		f.t.Fatalf("shortening retention to %v: %+v, %v; want it applied at once", days, res, err)
	}
	return res
}

// lengthenRetention applies a retention change that lengthens a period,
// approved by a second admin.
func (f *fixture) lengthenRetention(days map[privacy.Category]int) {
	f.t.Helper()
	res, err := f.svc.SetRetention(f.ctx, f.tenant, days, "the works council agreed", admin.ID, admin)
	if err != nil || res.Approval == nil {
		f.t.Fatalf("lengthening retention to %v: %+v, %v", days, res, err)
	}
	second := iam.Actor{Type: store.ActorAdmin, ID: "admin-2"}
	if decided, err := f.svc.DecidePolicyChange(f.ctx, f.tenant, res.Approval.ID, privacy.DecideInput{Approve: true}, second.ID, second); err != nil || !decided.Applied {
		f.t.Fatalf("approving retention %v: %+v, %v", days, decided, err)
	}
}

func (f *fixture) settings() privacy.Settings {
	f.t.Helper()
	s, _, err := privacy.LoadSettings(f.ctx, f.st.Read(), f.tenant)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// expiry is when the device's current value of field expires.
func (f *fixture) expiry(deviceID, field string) time.Time {
	f.t.Helper()
	cur, err := f.st.Read().Inventory().Current(f.ctx, f.tenant, deviceID)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, v := range cur {
		if v.Field == field {
			return v.ExpiresAt
		}
	}
	f.t.Fatalf("device %s holds no %s", deviceID, field)
	return time.Time{}
}

// forgetNoticeRetention stores the settings as Steward did before it kept
// each notice version's retention.
func (f *fixture) forgetNoticeRetention() {
	f.t.Helper()
	err := f.st.Tx(f.ctx, func(q store.Queries) error {
		settings, version, err := privacy.LoadSettings(f.ctx, q, f.tenant)
		if err != nil {
			return err
		}
		for _, kept := range settings.NoticePolicies {
			for v, terms := range kept {
				terms.RetentionDays = nil
				kept[v] = terms
			}
		}
		return privacy.SaveSettings(f.ctx, q, f.tenant, settings, version, f.now)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}
