package server

import (
	"testing"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestQueriesFollowTheRightsTheDeviceGranted: a personal phone enrols
// while the policy drops network fields, so its profile grants no network
// information right. Two admins widen the policy, and its owner accepts
// the new notice: the phone is still not asked for its MAC addresses,
// which it could not answer, and the rest of its inventory is refreshed.
func TestQueriesFollowTheRightsTheDeviceGranted(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var narrowed api.PolicyChangeView
		f.must(200, f.owner, "POST", f.path("/privacy/policy-changes"), api.PolicyChangeRequest{Reason: "no MAC addresses for now",
			Changes: []privacy.Change{{Ownership: privacy.Personal, Category: privacy.Network, Mode: privacy.Drop}}}, &narrowed)
		if !narrowed.Applied {
			t.Fatalf("dropping personal network fields: %+v", narrowed)
		}
		f.must(201, f.owner, "POST", f.path("/privacy/notices"), api.NoticeRequest{Ownership: "personal",
			Translations: []privacy.Translation{{Language: "en", Title: "Devices", Body: "No network fields."}}}, nil)
		erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		phone, phoneID := f.enrol("personal", erika.ID, "", nil)

		_, second := f.admin("second@fleet.test", "administrator")
		f.changePolicy(second, "the works council agreed", privacy.Change{Ownership: privacy.Personal, Category: privacy.Network, Mode: privacy.Hide})
		settings, err := privacy.ViewSettings(f.ctx, f.app.Store.Read(), f.tenant)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.app.Privacy.RecordConsent(f.ctx, f.tenant, erika.ID, privacy.ConsentInput{Ownership: "personal",
			NoticeVersion: settings.NoticeVersions[privacy.Personal], Language: "en", Method: "portal"},
			iam.Actor{Type: store.ActorSubject, ID: erika.ID}); err != nil {
			t.Fatal(err)
		}
		phone.Withheld = nil
		f.syncDevice(phone, phoneID)
		if len(phone.Withheld) > 0 {
			t.Errorf("the phone was asked for %v, which its enrolment grants no right for", phone.Withheld)
		}
	})
}
