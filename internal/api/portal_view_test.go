package api

import (
	"slices"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPortalShowsWhatAdminsSee: the employee sees each value held about
// their device, why, and whether admins see it or only after a reveal,
// exactly as the admin's device view masks it; with the categories not
// collected. Reading their own values leaves no access record, and another
// person's device is not found.
func TestPortalShowsWhatAdminsSee(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		base := "/api/v1/tenants/" + e.rootID
		var erika, max SubjectView
		e.must(201, e.owner, "POST", base+"/subjects", SubjectRequest{Email: "erika@acme.test", Name: "Erika"}, &erika)
		e.must(201, e.owner, "POST", base+"/subjects", SubjectRequest{Email: "max@acme.test", Name: "Max"}, &max)
		var phone, colleagues DeviceView
		e.must(201, e.owner, "POST", base+"/devices", DeviceRequest{SubjectID: erika.ID, Ownership: "personal", Platform: "ios"}, &phone)
		e.must(201, e.owner, "POST", base+"/devices", DeviceRequest{SubjectID: max.ID, Ownership: "personal", Platform: "ios"}, &colleagues)
		if _, err := e.priv.Ingest(t.Context(), privacy.Report{TenantID: e.rootID, DeviceID: phone.ID, Values: []privacy.Observation{
			{Field: "device.serial_number", Value: "SERIAL-PORTAL-1"}, {Field: "os.version", Value: "18.1"},
			{Field: "telephony.phone_number", Value: "+1 555 0100"}}}); err != nil {
			t.Fatal(err)
		}
		var admin DeviceDetailView
		e.must(200, e.owner, "GET", base+"/devices/"+phone.ID, nil, &admin)

		var tok PortalTokenView
		e.must(201, e.owner, "POST", base+"/subjects/"+erika.ID+"/portal-tokens", PortalTokenRequest{}, &tok)
		var before List[AccessRecordView]
		e.must(200, tok.Token, "GET", "/api/v1/portal/access-record", nil, &before)
		var own PortalDeviceView
		e.must(200, tok.Token, "GET", "/api/v1/portal/devices/"+phone.ID, nil, &own)

		if own.ID != phone.ID || len(own.Fields) != len(admin.Fields) {
			t.Fatalf("the employee's view %+v; the admin's %+v", own, admin.Fields)
		}
		seen := map[string]privacy.SeenField{}
		for _, f := range own.Fields {
			seen[f.Field] = f
		}
		for _, a := range admin.Fields {
			f, ok := seen[a.Field]
			want := privacy.AdminsSeeValue
			if a.Masked {
				want = privacy.AdminsSeeMasked
			}
			if !ok || f.AdminsSee != want || f.Purpose == "" || f.LegalBasis == "" || len(f.Value) == 0 {
				t.Errorf("%s: the employee sees %+v; the admin sees masked=%v", a.Field, f, a.Masked)
			}
		}
		if f := seen["device.serial_number"]; f.AdminsSee != privacy.AdminsSeeMasked || string(f.Value) != `"SERIAL-PORTAL-1"` {
			t.Errorf("the serial number, hidden from admins, to its owner: %+v", f)
		}
		if f := seen["os.version"]; f.AdminsSee != privacy.AdminsSeeValue || string(f.Value) != `"18.1"` {
			t.Errorf("the OS version, shown to admins: %+v", f)
		}
		if _, held := seen["telephony.phone_number"]; held || !slices.Contains(own.NotCollected, privacy.Telephony) {
			t.Errorf("telephony on a personal device: held %v, not collected %v", held, own.NotCollected)
		}

		var after List[AccessRecordView]
		e.must(200, tok.Token, "GET", "/api/v1/portal/access-record", nil, &after)
		if len(after.Items) != len(before.Items) {
			t.Errorf("reading their own device added to the access record: %+v", after.Items)
		}
		for _, id := range []string{colleagues.ID, "00000000-0000-0000-0000-000000000000"} {
			if r := e.do(tok.Token, "GET", "/api/v1/portal/devices/"+id, nil); r.status != 404 {
				t.Errorf("another person's or no device %s: %d %s", id, r.status, r.body)
			}
		}
		if r := e.do(e.owner, "GET", "/api/v1/portal/devices/"+phone.ID, nil); r.status != 401 {
			t.Errorf("an admin session on the portal: %d", r.status)
		}
	})
}
