package privacy_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func TestRevealNeedsReasonExpiresAndIsRecorded(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		byod := f.device(erika.ID, privacy.Personal)
		f.ingest(deviceInformation(f, byod.ID))

		_, err := f.svc.Reveal(f.ctx, f.tenant, byod.ID, privacy.RevealInput{Fields: []string{"device.serial_number"}}, privacy.Viewer{Actor: admin, AdminID: admin.ID})
		if !apperr.IsKind(err, apperr.KindInvalid) {
			t.Fatalf("reveal without a reason: %v", err)
		}
		_, err = f.svc.Reveal(f.ctx, f.tenant, byod.ID, privacy.RevealInput{Fields: []string{"location.coordinates"}, Reason: "lost in a taxi yesterday"}, privacy.Viewer{Actor: admin, AdminID: admin.ID})
		if !apperr.IsKind(err, apperr.KindForbidden) {
			t.Fatalf("locating a personal device: %v", err)
		}
		if !f.view(byod.ID)["device.serial_number"].Masked {
			t.Fatal("serial number not masked before the reveal")
		}
		if _, err := f.svc.Reveal(f.ctx, f.tenant, byod.ID, privacy.RevealInput{Fields: []string{"device.serial_number"},
			Reason: "warranty claim ticket 4711", Duration: "10m"}, privacy.Viewer{Actor: admin, AdminID: admin.ID}); err != nil {
			t.Fatal(err)
		}
		if v := f.view(byod.ID)["device.serial_number"]; v.Masked || string(v.Value) != `"`+markerSerial+`"` {
			t.Fatalf("after the reveal: %+v", v)
		}
		// Another admin does not inherit the reveal.
		other := iam.Actor{Type: store.ActorAdmin, ID: "admin-2"}
		ov, err := f.svc.ViewDevice(f.ctx, f.tenant, byod.ID, privacy.Viewer{Actor: other, AdminID: other.ID})
		if err != nil {
			t.Fatal(err)
		}
		for _, fv := range ov.Fields {
			if fv.Field == "device.serial_number" && !fv.Masked {
				t.Error("a reveal leaked to another admin")
			}
		}
		f.now = f.now.Add(11 * time.Minute)
		if !f.view(byod.ID)["device.serial_number"].Masked {
			t.Fatal("the reveal did not expire")
		}
		recs, err := f.svc.AccessRecord(f.ctx, f.tenant, erika.ID, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var reveal, read bool
		for _, r := range recs {
			reveal = reveal || (r.Action == "reveal" && r.Reason == "warranty claim ticket 4711" && slices.Contains(r.Fields, "device.serial_number"))
			read = read || (r.Action == "read" && slices.Contains(r.Fields, "device.serial_number") && r.Actor == "admin:admin-1")
		}
		if !reveal || !read {
			t.Errorf("access record lacks the reveal (%v) or the read (%v): %+v", reveal, read, recs)
		}
	})
}

func TestCiphertextMovedToAnotherRowIsReportedCorrupted(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	erika := f.person("erika@acme.test")
	a, b := f.device(erika.ID, privacy.Corporate), f.device(erika.ID, privacy.Corporate)
	f.ingest(deviceInformation(f, a.ID))
	f.ingest(deviceInformation(f, b.ID))
	cur, err := f.st.Read().Inventory().Current(f.ctx, f.tenant, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(cur, func(v store.InventoryValue) bool { return v.Field == "device.serial_number" })
	moved := cur[i]
	moved.DeviceID = b.ID // A's ciphertext, pasted into B's row
	bk, _ := f.st.Read().Keys().DataKeyByOwner(f.ctx, f.tenant, keys.DeviceOwner(b.ID))
	moved.KeyID = bk.ID
	if err := f.st.Tx(f.ctx, func(q store.Queries) error { return q.Inventory().Put(f.ctx, []store.InventoryValue{moved}, nil) }); err != nil {
		t.Fatal(err)
	}
	if v := f.view(b.ID)["device.serial_number"]; v.Unreadable != "corrupted" || v.Value != nil {
		t.Errorf("moved ciphertext: %+v, want unreadable=corrupted and no value", v)
	}
	if v := f.view(a.ID)["device.serial_number"]; v.Unreadable != "" {
		t.Errorf("the original row broke: %+v", v)
	}
}

func TestEraseSubjectShredsKeysAndIssuesCertificate(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		bob := f.person("bob@acme.test")
		var devices []store.Device
		for i := 0; i < 10; i++ {
			o := privacy.Corporate
			if i%2 == 1 {
				o = privacy.Personal
			}
			d := f.device(erika.ID, o)
			f.ingest(deviceInformation(f, d.ID))
			devices = append(devices, d)
		}
		bobs := f.device(bob.ID, privacy.Corporate)
		f.ingest(deviceInformation(f, bobs.ID))

		if _, err := f.svc.EraseSubject(f.ctx, f.tenant, erika.ID, "", admin); !apperr.IsKind(err, apperr.KindInvalid) {
			t.Fatalf("erasure without a reason: %v", err)
		}
		sc, err := f.svc.EraseSubject(f.ctx, f.tenant, erika.ID, "Art 17 request, ticket 99", admin)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := privacy.VerifyCertificate(f.signer.PublicKey(), sc)
		if err != nil {
			t.Fatal(err)
		}
		if cert.SubjectID != erika.ID || len(cert.KeysDestroyed) != 11 || len(cert.DeviceIDs) != 10 || cert.RowsRemoved["inventory"] == 0 {
			t.Errorf("certificate: %+v", cert)
		}
		tampered := sc
		tampered.Certificate = sc.Certificate[:len(sc.Certificate)-1] + " }"
		if _, err := privacy.VerifyCertificate(f.signer.PublicKey(), tampered); err == nil {
			t.Error("a changed certificate verified")
		}
		q := f.st.Read()
		sub, _ := q.Subjects().Get(f.ctx, f.tenant, erika.ID)
		if sub.State != store.SubjectErased || sub.Profile != nil || sub.EmailIndex != nil || f.svc.SubjectStatus(f.ctx, q, sub) != "erased" {
			t.Errorf("subject after erasure: %+v", sub)
		}
		for _, id := range cert.KeysDestroyed {
			k, err := q.Keys().GetDataKey(f.ctx, f.tenant, id)
			if err != nil || k.Wrapped != nil || k.DestroyedAt.IsZero() {
				t.Errorf("key %s not destroyed: %+v %v", id, k, err)
			}
		}
		for i, d := range devices {
			cur, _ := q.Inventory().Current(f.ctx, f.tenant, d.ID)
			got, _ := q.Devices().Get(f.ctx, f.tenant, d.ID)
			wantState := store.DevicePending
			if i%2 == 1 {
				wantState = store.DeviceDeprovisioned
			}
			if len(cur) != 0 || got.SubjectID != "" || got.State != wantState {
				t.Errorf("device %d after erasure: %d values, subject %q, state %s", i, len(cur), got.SubjectID, got.State)
			}
		}
		if _, err := f.svc.FindSubjectByEmail(f.ctx, f.tenant, "erika@acme.test"); !apperr.IsKind(err, apperr.KindNotFound) {
			t.Errorf("the erased e-mail is still findable: %v", err)
		}
		if v := f.view(bobs.ID)["device.serial_number"]; string(v.Value) != `"`+markerSerial+`"` {
			t.Errorf("another person's data was touched: %+v", v)
		}
		if _, err := f.svc.EraseSubject(f.ctx, f.tenant, erika.ID, "Art 17 request, again", admin); !apperr.IsKind(err, apperr.KindConflict) {
			t.Errorf("second erasure: %v", err)
		}
		// The corporate devices carry on with a fresh key.
		f.ingest(deviceInformation(f, devices[0].ID))
		if v := f.view(devices[0].ID)["device.serial_number"]; v.Unreadable != "" {
			t.Errorf("corporate device after erasure: %+v", v)
		}
	})
}

func TestRetentionPurgeRemovesExpiredDataAndAudits(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		d := f.device(f.person("erika@acme.test").ID, privacy.Corporate)
		f.ingest(deviceInformation(f, d.ID))
		f.now = f.now.Add(24 * time.Hour)
		r := deviceInformation(f, d.ID)
		r.Values[3].Value = "18.2" // os.version changes: 18.1 goes to history
		f.ingest(r)

		p := &privacy.Purger{Service: f.svc, Batch: 2}
		f.now = f.now.Add(6 * 24 * time.Hour) // 7 days after the first report, 6 after the last
		if res, err := p.RunOnce(f.ctx); err != nil || res.Rows != 0 {
			t.Fatalf("nothing is due yet: %+v %v", res, err)
		}
		f.now = f.now.Add(24 * time.Hour) // the last location is 7 days old
		res, err := p.RunOnce(f.ctx)
		if err != nil || res.Rows != 1 || res.ByKey[f.tenant+"/location"] != 1 {
			t.Errorf("after 7 days: %+v %v", res, err)
		}
		if _, ok := f.view(d.ID)["location.coordinates"]; ok {
			t.Error("location survived its retention")
		}
		f.now = f.now.Add(23 * 24 * time.Hour) // the superseded OS version is 30 days old
		if res, err = p.RunOnce(f.ctx); err != nil || res.Rows != 1 || res.ByKey[f.tenant+"/os"] != 1 {
			t.Errorf("inventory history after 30 days: %+v %v", res, err)
		}
		if v := f.view(d.ID)["os.version"]; string(v.Value) != `"18.2"` {
			t.Errorf("current os.version was purged: %+v", v)
		}
		// A deprovisioned device's row goes 30 days after deprovisioning.
		if _, err := f.svc.DeprovisionDevice(f.ctx, f.tenant, d.ID, "returned to the leasing company", admin); err != nil {
			t.Fatal(err)
		}
		f.now = f.now.Add(31 * 24 * time.Hour)
		if res, err = p.RunOnce(f.ctx); err != nil || res.ByKey[f.tenant+"/deprovisioned_devices"] != 1 {
			t.Errorf("deprovisioned device after 31 days: %+v %v", res, err)
		}
		if _, err := f.st.Read().Devices().Get(f.ctx, f.tenant, d.ID); err == nil {
			t.Error("the deprovisioned device row survived its retention")
		}
		// The fourth: Erika, whose only device it was, erased a month after it left.
		entries, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "privacy.retention.purge"})
		if err != nil || len(entries) != 4 {
			t.Fatalf("purge audit entries: %d %v", len(entries), err)
		}
		var details map[string]map[string]int
		_ = json.Unmarshal(entries[0].Details, &details)
		if details["removed"]["location"] != 1 {
			t.Errorf("first purge entry details: %s", entries[0].Details)
		}
	})
}

func TestWideningNeedsASecondAdmin(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		byod := f.device(erika.ID, privacy.Personal)
		f.ingest(deviceInformation(f, byod.ID))
		widen := privacy.PolicyChangeInput{Reason: "needed for the lost-device process",
			Changes: []privacy.Change{{Ownership: privacy.Personal, Category: privacy.Telephony, Mode: privacy.Hide}}}

		res, err := f.svc.RequestPolicyChange(f.ctx, f.tenant, widen, "admin-1", admin)
		if err != nil || res.Applied || res.Approval == nil {
			t.Fatalf("widening: %+v %v", res, err)
		}
		_, err = f.svc.DecidePolicyChange(f.ctx, f.tenant, res.Approval.ID, privacy.DecideInput{Approve: true}, "admin-1", admin)
		if !apperr.IsKind(err, apperr.KindForbidden) {
			t.Fatalf("the requester approved their own change: %v", err)
		}
		settings, _, _ := privacy.LoadSettings(f.ctx, f.st.Read(), f.tenant)
		if settings.Policy.Mode(privacy.Personal, privacy.Telephony) != privacy.Drop {
			t.Fatal("the change applied before approval")
		}
		second := iam.Actor{Type: store.ActorAdmin, ID: "admin-2"}
		if res, err = f.svc.DecidePolicyChange(f.ctx, f.tenant, res.Approval.ID, privacy.DecideInput{Approve: true}, "admin-2", second); err != nil || !res.Applied {
			t.Fatalf("approval: %+v %v", res, err)
		}
		settings, _, _ = privacy.LoadSettings(f.ctx, f.st.Read(), f.tenant)
		if settings.Policy.Mode(privacy.Personal, privacy.Telephony) != privacy.Hide || settings.NoticeVersions[privacy.Personal] != 1 {
			t.Errorf("after approval: mode %s, notice version %d", settings.Policy.Mode(privacy.Personal, privacy.Telephony), settings.NoticeVersions[privacy.Personal])
		}
		ns, _ := f.st.Read().Notifications().ListForSubject(f.ctx, f.tenant, erika.ID)
		if len(ns) != 1 || ns[0].Kind != "consent_request" {
			t.Errorf("affected employee notifications: %+v", ns)
		}
		// An expired request cannot be approved.
		res, err = f.svc.RequestPolicyChange(f.ctx, f.tenant, privacy.PolicyChangeInput{Reason: "shared devices need it too",
			Changes: []privacy.Change{{Ownership: privacy.Shared, Category: privacy.UsageLogs, Mode: privacy.Show}}}, "admin-1", admin)
		if err != nil {
			t.Fatal(err)
		}
		f.now = f.now.Add(73 * time.Hour)
		if _, err := f.svc.DecidePolicyChange(f.ctx, f.tenant, res.Approval.ID, privacy.DecideInput{Approve: true}, "admin-2", second); !apperr.IsKind(err, apperr.KindConflict) {
			t.Errorf("expired approval: %v", err)
		}
		// Narrowing applies at once and deletes what is no longer allowed.
		res, err = f.svc.RequestPolicyChange(f.ctx, f.tenant, privacy.PolicyChangeInput{Reason: "we do not need device names",
			Changes: []privacy.Change{{Ownership: privacy.Personal, Category: privacy.DeviceIdentity, Mode: privacy.Drop}}}, "admin-1", admin)
		if err != nil || !res.Applied || res.Purged != 2 {
			t.Fatalf("narrowing: %+v %v", res, err)
		}
		if _, ok := f.view(byod.ID)["device.serial_number"]; ok {
			t.Error("serial number kept after narrowing")
		}
		// Invalid combinations are refused.
		// A User Enrollment never reports identity, network or telephony
		// values: a notice promising them would be false.
		for _, never := range []privacy.Category{privacy.DeviceIdentity, privacy.Network, privacy.Telephony} {
			_, err = f.svc.RequestPolicyChange(f.ctx, f.tenant, privacy.PolicyChangeInput{Reason: "make user enrolment identify devices",
				Changes: []privacy.Change{{Ownership: privacy.UserEnrolled, Category: never, Mode: privacy.Hide}}}, "admin-1", admin)
			if !apperr.IsKind(err, apperr.KindInvalid) {
				t.Errorf("user-enrolled %s: %v", never, err)
			}
		}
		_, err = f.svc.RequestPolicyChange(f.ctx, f.tenant, privacy.PolicyChangeInput{Reason: "typo in the category",
			Changes: []privacy.Change{{Ownership: privacy.Corporate, Category: "locaton", Mode: privacy.Show}}}, "admin-1", admin)
		if !apperr.IsKind(err, apperr.KindInvalid) {
			t.Errorf("unknown category: %v", err)
		}
	})
}

func TestConsentVersionsAndWithdrawal(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		erika := f.person("erika@acme.test")
		byod := f.device(erika.ID, privacy.Personal)
		f.ingest(deviceInformation(f, byod.ID))
		notice := privacy.NoticeInput{Ownership: "personal", Translations: []privacy.Translation{
			{Language: "en", Title: "Your device and us", Body: privacy.PlainSummary(privacy.DefaultSettings(), privacy.Personal)},
			{Language: "de", Title: "Ihr Gerät und wir", Body: "Wir sehen nur verwaltete Apps."}}}
		v, err := f.svc.PublishNotice(f.ctx, f.tenant, notice, admin)
		if err != nil || v != 1 {
			t.Fatalf("publish: %d %v", v, err)
		}
		subject := iam.Actor{Type: store.ActorSubject, ID: erika.ID}
		accept := privacy.ConsentInput{DeviceID: byod.ID, Ownership: "personal", NoticeVersion: 1, Language: "de", Method: "portal"}
		c, err := f.svc.RecordConsent(f.ctx, f.tenant, erika.ID, accept, subject)
		if err != nil {
			t.Fatal(err)
		}
		if state, _ := f.svc.Consents(f.ctx, f.tenant, erika.ID); len(state.Outdated) != 0 {
			t.Errorf("outdated right after consent: %v", state.Outdated)
		}
		if v, err = f.svc.PublishNotice(f.ctx, f.tenant, notice, admin); err != nil || v != 2 {
			t.Fatalf("publish v2: %d %v", v, err)
		}
		if state, _ := f.svc.Consents(f.ctx, f.tenant, erika.ID); !slices.Equal(state.Outdated, []privacy.Ownership{privacy.Personal}) {
			t.Errorf("a new version must ask again: %v", state.Outdated)
		}
		if _, err := f.svc.RecordConsent(f.ctx, f.tenant, erika.ID, accept, subject); !apperr.IsKind(err, apperr.KindConflict) {
			t.Errorf("consent to an old version: %v", err)
		}
		certs, err := f.svc.WithdrawConsent(f.ctx, f.tenant, erika.ID, c.ID, subject)
		if err != nil || len(certs) != 1 {
			t.Fatalf("withdraw: %d certificates, %v", len(certs), err)
		}
		got, _ := f.st.Read().Devices().Get(f.ctx, f.tenant, byod.ID)
		cur, _ := f.st.Read().Inventory().Current(f.ctx, f.tenant, byod.ID)
		if got.State != store.DeviceDeprovisioned || len(cur) != 0 {
			t.Errorf("after withdrawal the personal device is %s with %d values", got.State, len(cur))
		}
		if _, err := f.svc.WithdrawConsent(f.ctx, f.tenant, erika.ID, c.ID, subject); !apperr.IsKind(err, apperr.KindConflict) {
			t.Errorf("withdrawing twice: %v", err)
		}
	})
}

func TestNothingLeavesThroughAFlowThatIsOff(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	var received atomic.Int32
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { received.Add(1) }))
	defer sink.Close()
	out := &privacy.Outbound{Service: f.svc, Client: sink.Client()}
	body := []byte(`{"device":"x"}`)
	for _, flow := range privacy.Flows {
		if err := out.Post(f.ctx, f.tenant, flow.Flow, sink.URL, "application/json", body); !errors.Is(err, privacy.ErrFlowOff) {
			t.Errorf("%s by default: %v", flow.Flow, err)
		}
	}
	if n := received.Load(); n != 0 {
		t.Fatalf("%d requests left while every flow was off", n)
	}
	if _, err := f.svc.SetFlow(f.ctx, f.tenant, privacy.FlowWebhooks, true, "SIEM integration approved by the DPO", admin); err != nil {
		t.Fatal(err)
	}
	if err := out.Post(f.ctx, f.tenant, privacy.FlowWebhooks, sink.URL, "application/json", body); err != nil || received.Load() != 1 {
		t.Fatalf("flow on: %v, %d received", err, received.Load())
	}
	if err := out.Post(f.ctx, f.tenant, privacy.FlowAssetSync, sink.URL, "application/json", body); !errors.Is(err, privacy.ErrFlowOff) {
		t.Errorf("another flow went out: %v", err)
	}
	other := f.makeTenant("globex")
	if err := out.Post(f.ctx, other, privacy.FlowWebhooks, sink.URL, "application/json", body); !errors.Is(err, privacy.ErrFlowOff) {
		t.Errorf("one tenant's consent opened another's flow: %v", err)
	}
	if _, err := f.svc.SetFlow(f.ctx, f.tenant, privacy.FlowWebhooks, false, "integration retired this week", admin); err != nil {
		t.Fatal(err)
	}
	if err := out.Post(f.ctx, f.tenant, privacy.FlowWebhooks, sink.URL, "application/json", body); !errors.Is(err, privacy.ErrFlowOff) || received.Load() != 1 {
		t.Errorf("after switching off: %v, %d received", err, received.Load())
	}
}
