package api

import (
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestWideningWaitsForTheEmployeeThroughTheAPI: two admins widen what a
// personal device shows; the device's serial number stays hidden until
// its owner accepts the new notice in the portal.
func TestWideningWaitsForTheEmployeeThroughTheAPI(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		base := "/api/v1/tenants/" + e.rootID
		_, second := e.admin(e.rootID, "dpo@steward.test", "administrator")
		var sub SubjectView
		e.must(201, e.owner, "POST", base+"/subjects", SubjectRequest{Email: "erika@acme.test", Name: "Erika"}, &sub)
		var dev DeviceView
		e.must(201, e.owner, "POST", base+"/devices", DeviceRequest{SubjectID: sub.ID, Ownership: "personal", Platform: "ios"}, &dev)
		e.must(201, e.owner, "POST", base+"/privacy/notices", NoticeRequest{Ownership: "personal", Translations: []privacy.Translation{
			{Language: "en", Title: "Your device and us", Body: privacy.PlainSummary(privacy.DefaultSettings(), privacy.Personal)}}}, nil)
		var tok PortalTokenView
		e.must(201, e.owner, "POST", base+"/subjects/"+sub.ID+"/portal-tokens", PortalTokenRequest{}, &tok)
		accept := func(version int64) {
			e.must(201, tok.Token, "POST", "/api/v1/portal/consents", ConsentRequest{Ownership: "personal", NoticeVersion: version, Language: "en"}, nil)
		}
		accept(1)

		var pc PolicyChangeView
		e.must(200, e.owner, "POST", base+"/privacy/policy-changes", PolicyChangeRequest{Reason: "warranty cases need the serial number",
			Changes: []privacy.Change{{Ownership: privacy.Personal, Category: privacy.DeviceIdentity, Mode: privacy.Show}}}, &pc)
		e.must(200, second, "POST", base+"/approvals/"+pc.Approval.ID+"/decision", DecisionRequest{Approve: true}, &pc)
		if !pc.Applied {
			t.Fatalf("the second admin's approval did not apply the widening: %+v", pc)
		}

		at := time.Now().UTC()
		serial := func(when string, wantShown bool) {
			t.Helper()
			at = at.Add(time.Minute)
			if _, err := e.priv.Ingest(t.Context(), privacy.Report{TenantID: e.rootID, DeviceID: dev.ID, At: at,
				Values: []privacy.Observation{{Field: "device.serial_number", Value: "SERIAL-API-2"}}}); err != nil {
				t.Fatal(err)
			}
			var detail DeviceDetailView
			e.must(200, e.owner, "GET", base+"/devices/"+dev.ID, nil, &detail)
			i := slices.IndexFunc(detail.Fields, func(f privacy.FieldView) bool { return f.Field == "device.serial_number" })
			if i < 0 {
				t.Fatalf("%s: no serial number in %+v", when, detail.Fields)
			}
			if f := detail.Fields[i]; f.Masked == wantShown || (string(f.Value) == `"SERIAL-API-2"`) != wantShown {
				t.Errorf("%s: serial number %+v, want shown %v", when, f, wantShown)
			}
		}
		serial("before Erika accepted version 2", false)
		accept(2)
		serial("after Erika accepted version 2", true)
	})
}
