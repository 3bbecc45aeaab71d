package mdm_test

import (
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// answer queues req for the device behind d, has it delivered, and sends
// the device's answer: Acknowledged, with payload. It returns the state
// the command ended in.
func (f *fixture) answer(t *testing.T, d channelSender, deviceID string, req mdmproto.Request, payload map[string]any) string {
	t.Helper()
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{deviceID}, req, "a reason", admin); err != nil {
		t.Fatal(err)
	}
	sent := command(t, d, map[string]any{"Status": "Idle"})
	if sent.RequestType != string(req.RequestType()) {
		t.Fatalf("delivered %s, want %s", sent.RequestType, req.RequestType())
	}
	msg := map[string]any{"Status": "Acknowledged", "CommandUUID": sent.CommandUUID, "RequestType": sent.RequestType}
	for k, v := range payload {
		msg[k] = v
	}
	if _, err := d.Send(f.ctx, msg); err != nil {
		t.Fatal(err)
	}
	got, err := f.st.Read().Commands().Get(f.ctx, f.tenant, sent.CommandUUID)
	if err != nil {
		t.Fatal(err)
	}
	return got.State
}

// TestListWithoutItsKeyKeepsTheInventory: an acknowledged list command
// whose answer lacks the list, which Apple's schema requires, fails as an
// answer that did not decode and leaves the list reported before; an empty
// list is an answer, and empties it.
func TestListWithoutItsKeyKeepsTheInventory(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.polled(ts, privacy.Corporate, "")
	// Its installed apps it reported at enrolment; the other lists it reports now.
	if f.answer(t, d, dev.ID, mdmproto.ManagedApplicationList{}, map[string]any{
		"ManagedApplicationList": map[string]any{"com.example.expenses": map[string]any{"Status": "Managed"}}}) != store.CommandAcknowledged {
		t.Fatal("the managed app list was not taken")
	}
	if f.answer(t, d, dev.ID, mdmproto.CertificateList{}, map[string]any{
		"CertificateList": []any{map[string]any{"CommonName": "Example Wi-Fi", "IsIdentity": true}}}) != store.CommandAcknowledged {
		t.Fatal("the certificate list was not taken")
	}
	for _, c := range []struct {
		req   mdmproto.Request
		field string
		empty any
	}{
		{mdmproto.InstalledApplicationList{}, "apps.installed", []any{}},
		{mdmproto.ManagedApplicationList{}, "apps.managed", map[string]any{}},
		{mdmproto.CertificateList{}, "security.certificates", []any{}},
	} {
		before := string(f.fields(dev.ID)[c.field].Value)
		if len(before) < 10 {
			t.Fatalf("%s before: %s", c.field, before)
		}
		if state := f.answer(t, d, dev.ID, c.req, nil); state != store.CommandError {
			t.Errorf("%s answered without its list ended %s, want %s", c.req.RequestType(), state, store.CommandError)
		}
		if after := string(f.fields(dev.ID)[c.field].Value); after != before {
			t.Errorf("%s changed by an answer without its list: %s, was %s", c.field, after, before)
		}
		if state := f.answer(t, d, dev.ID, c.req, map[string]any{string(c.req.RequestType()): c.empty}); state != store.CommandAcknowledged {
			t.Errorf("%s answered with an empty list ended %s", c.req.RequestType(), state)
		}
		if after := string(f.fields(dev.ID)[c.field].Value); after != "[]" {
			t.Errorf("%s after an empty list: %s, want []", c.field, after)
		}
	}
}

// TestDeviceLocationAnswers: a Lost Mode device that has no fix answers
// with placeholders and a negative accuracy; its command succeeds and no
// location is stored. A fix whose Timestamp is a <date> rather than the
// documented string is stored all the same.
func TestDeviceLocationAnswers(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.polled(ts, privacy.Corporate, "", supervised)
	noFix := map[string]any{"Latitude": -180.0, "Longitude": -180.0, "HorizontalAccuracy": -1.0, "VerticalAccuracy": -1.0,
		"Altitude": -1.0, "Speed": -1.0, "Course": -1.0, "Timestamp": time.Now().UTC().Format(time.RFC3339)}
	if state := f.answer(t, d, dev.ID, mdmproto.DeviceLocation{}, noFix); state != store.CommandAcknowledged {
		t.Errorf("an answer without a fix ended %s, want %s", state, store.CommandAcknowledged)
	}
	if loc, ok := f.fields(dev.ID)["location.coordinates"]; ok {
		t.Errorf("an answer without a fix stored a location: %+v", loc)
	}
	fix := map[string]any{"Latitude": 52.52, "Longitude": 13.405, "HorizontalAccuracy": 35.0, "Timestamp": time.Now().Add(-time.Hour)}
	if state := f.answer(t, d, dev.ID, mdmproto.DeviceLocation{}, fix); state != store.CommandAcknowledged {
		t.Errorf("a fix timed by a <date> ended %s, want %s", state, store.CommandAcknowledged)
	}
	if _, ok := f.fields(dev.ID)["location.coordinates"]; !ok {
		t.Error("a fix timed by a <date> was not stored")
	}
}
