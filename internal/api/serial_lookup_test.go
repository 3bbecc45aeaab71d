package api

import (
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// Finding a device by a serial its policy masks confirms the serial as a
// reveal would: it needs privacy.reveal and a reason, and the person sees
// it in their access record. A company device's serial, which the policy
// shows, is found without either.
func TestSerialLookup(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		base := "/api/v1/tenants/" + e.rootID
		var sub SubjectView
		e.must(201, e.owner, "POST", base+"/subjects", SubjectRequest{Email: "erika@acme.test", Name: "Erika"}, &sub)
		register := func(ownership, serial string) string {
			var dev DeviceView
			e.must(201, e.owner, "POST", base+"/devices", DeviceRequest{SubjectID: sub.ID, Ownership: ownership, Platform: "ios"}, &dev)
			if _, err := e.priv.Ingest(t.Context(), privacy.Report{TenantID: e.rootID, DeviceID: dev.ID,
				Values: []privacy.Observation{{Field: "device.serial_number", Value: serial}}}); err != nil {
				t.Fatal(err)
			}
			return dev.ID
		}
		company := register("corporate", "C02COMPANY1")
		own := register("personal", "F17PERSONAL")
		_, help := e.admin(e.rootID, "help@steward.test", "helpdesk")

		lookup := func(secret string, in SerialLookupRequest) DeviceListView {
			t.Helper()
			var out DeviceListView
			e.must(200, secret, "POST", base+"/devices/lookup", in, &out)
			return out
		}
		ids := func(v DeviceListView) []string {
			out := []string{}
			for _, d := range v.Items {
				out = append(out, d.ID)
			}
			return out
		}
		if got := lookup(help, SerialLookupRequest{Serial: " c02company1 "}); len(got.Items) != 1 || got.Items[0].ID != company || got.Note == "" {
			t.Fatalf("company device by serial: %+v", got)
		}
		head := e.auditHead(e.rootID)
		// Without a reason the personal device is left out, and the answer
		// reads as it would for a serial nobody carries.
		mine, nobody := lookup(e.owner, SerialLookupRequest{Serial: "F17PERSONAL"}), lookup(e.owner, SerialLookupRequest{Serial: "NOBODY"})
		if len(mine.Items) != 0 || mine.Note != nobody.Note || mine.LeftOut != 0 {
			t.Fatalf("masked serial without a reason: %+v, against %+v", mine, nobody)
		}
		// A reason without privacy.reveal finds nothing masked either.
		if got := lookup(help, SerialLookupRequest{Serial: "F17PERSONAL", Reason: "employee at the desk with it"}); len(got.Items) != 0 {
			t.Fatalf("help desk found a masked serial: %v", ids(got))
		}
		if e.changesSince(e.rootID, head.Seq) != 0 {
			t.Fatal("a lookup that found nothing masked was recorded")
		}
		const why = "employee at the desk with a broken screen"
		if got := lookup(e.owner, SerialLookupRequest{Serial: "F17PERSONAL", Reason: why}); len(got.Items) != 1 || got.Items[0].ID != own || got.Note != "" {
			t.Fatalf("masked serial with a reason: %+v", got)
		}
		var found int
		if err := st.Read().Audit().Scan(t.Context(), e.rootID, head.Seq, func(a store.AuditEntry) error {
			if a.Action == "privacy.serial_lookup" && a.TargetID == own && a.Reason == why {
				found++
			}
			return nil
		}); err != nil || found != 1 {
			t.Fatalf("audit entries of the lookup: %d, %v", found, err)
		}
		var tok PortalTokenView
		e.must(201, e.owner, "POST", base+"/subjects/"+sub.ID+"/portal-tokens", PortalTokenRequest{}, &tok)
		var recs List[AccessRecordView]
		e.must(200, tok.Token, "GET", "/api/v1/portal/access-record", nil, &recs)
		if len(recs.Items) != 1 || recs.Items[0].Action != privacy.SerialLookupAccess || recs.Items[0].Reason != why {
			t.Fatalf("the employee's access record: %+v", recs.Items)
		}

		head = e.auditHead(e.rootID)
		for _, bad := range []struct {
			method, path string
			body         any
		}{
			{"GET", base + "/devices?serial=C02COMPANY1", nil},
			{"POST", base + "/devices/lookup", SerialLookupRequest{}},
			{"POST", base + "/devices/lookup", SerialLookupRequest{Serial: "F17PERSONAL", Reason: "short"}},
			{"POST", base + "/devices/lookup", SerialLookupRequest{Serial: "F17PERSONAL", Limit: 5000}},
		} {
			if r := e.do(e.owner, bad.method, bad.path, bad.body); r.status != 400 {
				t.Errorf("%s %s %+v: %d %s", bad.method, bad.path, bad.body, r.status, r.body)
			}
		}
		if e.changesSince(e.rootID, head.Seq) != 0 {
			t.Error("a refused lookup was recorded")
		}
	})
}
