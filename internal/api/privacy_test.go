package api

import (
	"encoding/json"
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

type privacyObjects struct{ subject, device, approval, erasure string }

// privacyFixtures creates one of each privacy object in tenant through the API.
func (e *env) privacyFixtures(tenant, secret string) privacyObjects {
	e.t.Helper()
	var o privacyObjects
	base := "/api/v1/tenants/" + tenant
	var sub SubjectView
	e.must(201, secret, "POST", base+"/subjects", SubjectRequest{Email: "fixture-" + tenant[len(tenant)-6:] + "@example.test", Name: "Fix Ture"}, &sub)
	o.subject = sub.ID
	var dev DeviceView
	e.must(201, secret, "POST", base+"/devices", DeviceRequest{SubjectID: sub.ID, Ownership: "personal", Platform: "ios"}, &dev)
	o.device = dev.ID
	var gone DeviceView
	e.must(201, secret, "POST", base+"/devices", DeviceRequest{SubjectID: sub.ID, Ownership: "corporate", Platform: "macos"}, &gone)
	var cert CertificateView
	e.must(200, secret, "POST", base+"/devices/"+gone.ID+"/deprovision", ReasonRequest{Reason: "fixture: device returned"}, &cert)
	var c privacy.Certificate
	_ = json.Unmarshal([]byte(cert.Certificate), &c)
	o.erasure = c.ID
	var pc PolicyChangeView
	e.must(200, secret, "POST", base+"/privacy/policy-changes", PolicyChangeRequest{Reason: "fixture: widen collection",
		Changes: []privacy.Change{{Ownership: privacy.Personal, Category: privacy.Location, Mode: privacy.Hide}}}, &pc)
	o.approval = pc.Approval.ID
	return o
}

func TestPrivacyAPIFlow(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		base := "/api/v1/tenants/" + e.rootID
		var cat CatalogueView
		e.must(200, e.owner, "GET", "/api/v1/privacy/catalogue", nil, &cat)
		if len(cat.Fields) != len(privacy.Catalogue) || len(cat.Categories) != len(privacy.Categories) {
			t.Fatalf("catalogue: %d fields, %d categories", len(cat.Fields), len(cat.Categories))
		}
		var sub SubjectView
		e.must(201, e.owner, "POST", base+"/subjects", SubjectRequest{Email: "erika@acme.test", Name: "Erika"}, &sub)
		if r := e.do(e.owner, "POST", base+"/subjects", SubjectRequest{Email: "Erika@ACME.test"}); r.status != 409 {
			t.Errorf("duplicate e-mail (blind index): %d %s", r.status, r.body)
		}
		var dev DeviceView
		e.must(201, e.owner, "POST", base+"/devices", DeviceRequest{SubjectID: sub.ID, Ownership: "personal", Platform: "ios"}, &dev)
		if _, err := e.priv.Ingest(t.Context(), privacy.Report{TenantID: e.rootID, DeviceID: dev.ID, Values: []privacy.Observation{
			{Field: "device.serial_number", Value: "SERIAL-API-1"}, {Field: "os.version", Value: "18.1"},
			{Field: "telephony.phone_number", Value: "+1 555 0100"}}}); err != nil {
			t.Fatal(err)
		}
		var detail DeviceDetailView
		e.must(200, e.owner, "GET", base+"/devices/"+dev.ID, nil, &detail)
		fields := map[string]privacy.FieldView{}
		for _, f := range detail.Fields {
			fields[f.Field] = f
		}
		if !fields["device.serial_number"].Masked || fields["device.serial_number"].Value != nil || len(detail.Fields) != 2 {
			t.Fatalf("masked view: %+v", detail.Fields)
		}
		for _, bad := range []RevealRequest{{Fields: []string{"device.serial_number"}}, {Fields: []string{"nope"}, Reason: "a long enough reason"},
			{Fields: []string{"os.version"}, Reason: "a long enough reason"}, {Fields: []string{"device.serial_number"}, Reason: "a long enough reason", Duration: "5h"}} {
			if r := e.do(e.owner, "POST", base+"/devices/"+dev.ID+"/reveal", bad); r.status != 400 {
				t.Errorf("reveal %+v: %d %s", bad, r.status, r.body)
			}
		}
		e.must(201, e.owner, "POST", base+"/devices/"+dev.ID+"/reveal", RevealRequest{Fields: []string{"device.serial_number"}, Reason: "warranty case 12"}, nil)
		e.must(200, e.owner, "GET", base+"/devices/"+dev.ID, nil, &detail)
		for _, f := range detail.Fields {
			if f.Field == "device.serial_number" && string(f.Value) != `"SERIAL-API-1"` {
				t.Errorf("after reveal: %+v", f)
			}
		}

		// The employee reads their own access record through the portal.
		var tok PortalTokenView
		e.must(201, e.owner, "POST", base+"/subjects/"+sub.ID+"/portal-tokens", PortalTokenRequest{}, &tok)
		var recs List[AccessRecordView]
		e.must(200, tok.Token, "GET", "/api/v1/portal/access-record", nil, &recs)
		if len(recs.Items) != 2 || recs.Items[0].Action != "reveal" || recs.Items[0].Reason != "warranty case 12" {
			t.Errorf("portal access record: %+v", recs.Items)
		}
		var me PortalMeView
		e.must(200, tok.Token, "GET", "/api/v1/portal/me", nil, &me)
		if me.Person.Email != "erika@acme.test" || len(me.Devices) != 1 {
			t.Errorf("portal me: %+v", me)
		}
		// Portal tokens open portal routes only; admin credentials never open the portal.
		if r := e.do(tok.Token, "GET", base+"/devices", nil); r.status != 401 {
			t.Errorf("portal token on an admin route: %d", r.status)
		}
		if r := e.do(e.owner, "GET", "/api/v1/portal/me", nil); r.status != 401 {
			t.Errorf("admin session on the portal: %d", r.status)
		}
		var exp ExportView
		e.must(200, tok.Token, "POST", "/api/v1/portal/export", nil, &exp)
		if len(exp.Archive) == 0 || len(exp.Password) < 20 {
			t.Errorf("export: %d bytes, password %q", len(exp.Archive), exp.Password)
		}

		// Record of processing in three formats.
		for _, format := range []string{"json", "md", "html"} {
			if r := e.do(e.owner, "GET", base+"/privacy/record?format="+format, nil); r.status != 200 || len(r.body) < 500 {
				t.Errorf("record as %s: %d %d bytes", format, r.status, len(r.body))
			}
		}
		if r := e.do(e.owner, "GET", base+"/privacy/record?format=pdf", nil); r.status != 400 {
			t.Errorf("record as pdf: %d", r.status)
		}

		// Bad input: a clear 4xx and nothing changed.
		head := e.auditHead(e.rootID)
		for _, c := range []struct {
			method, path string
			body         any
			want         int
		}{
			{"POST", base + "/privacy/policy-changes", PolicyChangeRequest{Reason: "a good reason", Changes: []privacy.Change{{Ownership: "corporate", Category: "weather", Mode: "show"}}}, 400},
			{"POST", base + "/privacy/policy-changes", PolicyChangeRequest{Reason: "a good reason", Changes: []privacy.Change{{Ownership: "rented", Category: "location", Mode: "show"}}}, 400},
			{"PUT", base + "/privacy/retention", RetentionRequest{Reason: "a good reason", RetentionDays: map[privacy.Category]int{"weather": 3}}, 400},
			{"PUT", base + "/privacy/flows", FlowRequest{Flow: "telemetry-to-vendor", Enabled: true, Reason: "a good reason"}, 400},
			{"POST", base + "/subjects/00000000-0000-0000-0000-000000000000/export", ReasonRequest{Reason: "subject access request"}, 404},
			{"POST", base + "/subjects/" + sub.ID + "/export", ReasonRequest{}, 400},
			{"POST", base + "/subjects/" + sub.ID + "/erase", ReasonRequest{}, 400},
		} {
			if r := e.do(e.owner, c.method, c.path, c.body); r.status != c.want {
				t.Errorf("%s %s: %d %s, want %d", c.method, c.path, r.status, r.body, c.want)
			}
		}
		if e.changesSince(e.rootID, head.Seq) != 0 {
			t.Error("refused requests were recorded as changes")
		}

		var cert CertificateView
		e.must(200, e.owner, "POST", base+"/subjects/"+sub.ID+"/erase", ReasonRequest{Reason: "employee left, Art 17 request"}, &cert)
		if r := e.do(tok.Token, "GET", "/api/v1/portal/me", nil); r.status != 401 {
			t.Errorf("portal token after erasure: %d", r.status)
		}
		var got SubjectView
		e.must(200, e.owner, "GET", base+"/subjects/"+sub.ID, nil, &got)
		if got.State != "erased" {
			t.Errorf("subject after erasure: %+v", got)
		}
	})
}
