package privacy_test

import (
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestWideningWaitsForTheOwnersAcceptance: a widening of the personal
// policy reaches a personal device only once its owner accepts the notice
// it published; a narrowing applies at once; corporate devices, without
// consent, follow the current policy.
func TestWideningWaitsForTheOwnersAcceptance(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		byod := f.device(erika.ID, privacy.Personal)
		laptop := f.device(f.person("max@acme.test").ID, privacy.Corporate)
		f.publishNotice(privacy.Personal)
		f.accept(erika.ID, 1)

		f.widen(privacy.Change{Ownership: privacy.Personal, Category: privacy.DeviceIdentity, Mode: privacy.Show},
			privacy.Change{Ownership: privacy.Personal, Category: privacy.Telephony, Mode: privacy.Hide},
			privacy.Change{Ownership: privacy.Corporate, Category: privacy.Location, Mode: privacy.Show})
		got := f.ingest(deviceInformation(f, byod.ID))
		if got.Dropped != 3 { // phone number, IMEI, location
			t.Errorf("before Erika accepted version 2, %d values dropped, want 3: %+v", got.Dropped, got)
		}
		view := f.view(byod.ID)
		for _, field := range []string{"device.serial_number", "device.name"} {
			if !view[field].Masked || view[field].Value != nil {
				t.Errorf("%s before Erika accepted version 2: %+v, want it hidden as version 1 says", field, view[field])
			}
		}
		for _, field := range []string{"telephony.phone_number", "telephony.imei"} {
			if _, ok := view[field]; ok {
				t.Errorf("%s collected before Erika accepted version 2", field)
			}
		}
		f.ingest(deviceInformation(f, laptop.ID))
		if loc := f.view(laptop.ID)["location.coordinates"]; loc.Masked || loc.Value == nil {
			t.Errorf("corporate location after the widening: %+v, want it shown at once", loc)
		}

		f.accept(erika.ID, 2)
		f.now = f.now.Add(time.Minute)
		f.ingest(deviceInformation(f, byod.ID))
		view = f.view(byod.ID)
		if serial := view["device.serial_number"]; serial.Masked || string(serial.Value) != `"`+markerSerial+`"` {
			t.Errorf("serial number after Erika accepted version 2: %+v, want it shown", serial)
		}
		if phone, ok := view["telephony.phone_number"]; !ok || !phone.Masked {
			t.Errorf("phone number after Erika accepted version 2: %+v (stored %v), want it collected and hidden", phone, ok)
		}

		// Version 3 shows network addresses, which Erika has not accepted;
		// a narrowing of device identity reaches her device all the same.
		f.widen(privacy.Change{Ownership: privacy.Personal, Category: privacy.Network, Mode: privacy.Show})
		if _, err := f.svc.RequestPolicyChange(f.ctx, f.tenant, privacy.PolicyChangeInput{Reason: "serial numbers only on request",
			Changes: []privacy.Change{{Ownership: privacy.Personal, Category: privacy.DeviceIdentity, Mode: privacy.Hide}}}, "admin-1", admin); err != nil {
			t.Fatal(err)
		}
		f.now = f.now.Add(time.Minute)
		report := deviceInformation(f, byod.ID)
		report.Values = append(report.Values, privacy.Observation{Field: "network.wifi_mac", Value: "a4:83:e7:12:34:56"})
		f.ingest(report)
		view = f.view(byod.ID)
		if !view["device.serial_number"].Masked {
			t.Errorf("serial number after narrowing: %+v, want it hidden at once", view["device.serial_number"])
		}
		if mac := view["network.wifi_mac"]; !mac.Masked || mac.Value != nil {
			t.Errorf("Wi-Fi address before Erika accepted version 3: %+v, want it hidden as version 2 says", mac)
		}
	})
}

// TestNoticesFromBeforeSnapshotsAreHeldSafely: notices published before
// Steward kept each version's policy. The one current then is taken to be
// accepted under the policy of that moment; an older one, or none
// accepted, under the stricter of the private defaults and that policy.
func TestNoticesFromBeforeSnapshotsAreHeldSafely(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika, mats, noor := f.person("erika@acme.test"), f.person("mats@acme.test"), f.person("noor@acme.test")
		devices := map[string]store.Device{"erika": f.device(erika.ID, privacy.Personal), "mats": f.device(mats.ID, privacy.Personal),
			"noor": f.device(noor.ID, privacy.Personal)}
		f.publishNotice(privacy.Personal)
		f.accept(erika.ID, 1)
		f.widen(privacy.Change{Ownership: privacy.Personal, Category: privacy.DeviceIdentity, Mode: privacy.Show})
		f.accept(mats.ID, 2)
		f.forgetNoticePolicies()

		f.widen(privacy.Change{Ownership: privacy.Personal, Category: privacy.Telephony, Mode: privacy.Show})
		for who, wantSerialShown := range map[string]bool{"erika": false, "mats": true, "noor": false} {
			f.ingest(deviceInformation(f, devices[who].ID))
			view := f.view(devices[who].ID)
			if serial := view["device.serial_number"]; serial.Masked == wantSerialShown {
				t.Errorf("%s's serial number: %+v, want shown %v", who, serial, wantSerialShown)
			}
			if _, ok := view["telephony.phone_number"]; ok {
				t.Errorf("%s's phone number collected though nobody accepted version 3", who)
			}
		}
	})
}

func (f *fixture) publishNotice(o privacy.Ownership) {
	f.t.Helper()
	if _, err := f.svc.PublishNotice(f.ctx, f.tenant, privacy.NoticeInput{Ownership: string(o), Translations: []privacy.Translation{
		{Language: "en", Title: "Your device and us", Body: privacy.PlainSummary(privacy.DefaultSettings(), o)}}}, admin); err != nil {
		f.t.Fatal(err)
	}
}

// accept records that the person accepted version of the personal notice
// in the portal.
func (f *fixture) accept(subjectID string, version int64) {
	f.t.Helper()
	if _, err := f.svc.RecordConsent(f.ctx, f.tenant, subjectID, privacy.ConsentInput{Ownership: string(privacy.Personal),
		NoticeVersion: version, Language: "en", Method: "portal"}, iam.Actor{Type: store.ActorSubject, ID: subjectID}); err != nil {
		f.t.Fatal(err)
	}
}

// widen applies changes that widen the policy, approved by a second admin.
func (f *fixture) widen(changes ...privacy.Change) {
	f.t.Helper()
	res, err := f.svc.RequestPolicyChange(f.ctx, f.tenant, privacy.PolicyChangeInput{Changes: changes, Reason: "the works council agreed"}, "admin-1", admin)
	if err != nil || res.Approval == nil {
		f.t.Fatalf("widening %+v: %+v, %v", changes, res, err)
	}
	second := iam.Actor{Type: store.ActorAdmin, ID: "admin-2"}
	if res, err = f.svc.DecidePolicyChange(f.ctx, f.tenant, res.Approval.ID, privacy.DecideInput{Approve: true}, second.ID, second); err != nil || !res.Applied {
		f.t.Fatalf("approving %+v: %+v, %v", changes, res, err)
	}
}

// forgetNoticePolicies stores the settings as Steward did before it kept
// each notice version's policy.
func (f *fixture) forgetNoticePolicies() {
	f.t.Helper()
	err := f.st.Tx(f.ctx, func(q store.Queries) error {
		settings, version, err := privacy.LoadSettings(f.ctx, q, f.tenant)
		if err != nil {
			return err
		}
		settings.NoticePolicies = nil
		return privacy.SaveSettings(f.ctx, q, f.tenant, settings, version, f.now)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}
