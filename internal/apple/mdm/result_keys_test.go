package mdm_test

import (
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/device"
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
	if f.answer(t, d, dev.ID, mdmproto.ProfileList{}, map[string]any{
		"ProfileList": []any{map[string]any{"PayloadIdentifier": "com.example.wifi", "PayloadDisplayName": "Example Wi-Fi", "IsManaged": true}}}) != store.CommandAcknowledged {
		t.Fatal("the profile list was not taken")
	}
	for _, c := range []struct {
		req   mdmproto.Request
		field string
		empty any
	}{
		{mdmproto.InstalledApplicationList{}, "apps.installed", []any{}},
		{mdmproto.ManagedApplicationList{}, "apps.managed", map[string]any{}},
		{mdmproto.CertificateList{}, "security.certificates", []any{}},
		{mdmproto.ProfileList{}, "security.profiles", []any{}},
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
	f.answer(t, d, dev.ID, mdmproto.EnableLostMode{Message: "Call IT"}, nil) // a device is located only in Lost Mode
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

// TestLocateWithoutFixTellsTheAdmin: a locate whose device answers
// without a fix is done, as the device did what it was asked, and its
// action says it found no location and since when the last known one is
// known; so does its command. A fix stores the location and the action
// says nothing more; a fix too old to keep, or one the policy no longer
// keeps, is said to be so.
func TestLocateWithoutFixTellsTheAdmin(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		acts := actions.New(f.st, f.svc, f.priv, f.sealer, nil)
		acts.SetClock(func() time.Time { return f.now })
		f.svc.SetHooks(mdm.Hooks{CommandFinished: acts.CommandFinished})
		d, dev := f.polled(ts, privacy.Corporate, "", supervised)
		f.answer(t, d, dev.ID, mdmproto.EnableLostMode{Message: "Call IT"}, nil) // a device is located only in Lost Mode

		// locate asks where the device is and answers with payload; it
		// returns the action and its command as they ended.
		locate := func(payload map[string]any) (store.DeviceAction, store.Command) {
			t.Helper()
			b, err := acts.Submit(f.ctx, f.tenant, actions.Request{Action: actions.Locate, Reason: "left in a taxi on Friday",
				DeviceIDs: []string{dev.ID}}, device.Everything(), "admin:"+admin.ID, admin)
			if err != nil {
				t.Fatal(err)
			}
			sent := command(t, d, map[string]any{"Status": "Idle"})
			msg := map[string]any{"Status": "Acknowledged", "CommandUUID": sent.CommandUUID, "RequestType": sent.RequestType}
			maps.Copy(msg, payload)
			if _, err := d.Send(f.ctx, msg); err != nil {
				t.Fatal(err)
			}
			_, as, err := acts.Status(f.ctx, f.tenant, b.ID)
			if err != nil || len(as) != 1 {
				t.Fatalf("the batch: %+v, %v", as, err)
			}
			cmd, err := f.st.Read().Commands().Get(f.ctx, f.tenant, as[0].CommandID)
			if err != nil {
				t.Fatal(err)
			}
			return as[0], cmd
		}
		noFix := map[string]any{"Latitude": -180.0, "Longitude": -180.0, "HorizontalAccuracy": -1.0, "VerticalAccuracy": -1.0,
			"Altitude": -1.0, "Speed": -1.0, "Course": -1.0, "Timestamp": f.now.Format(time.RFC3339)}
		fix := map[string]any{"Latitude": 52.52, "Longitude": 13.405, "HorizontalAccuracy": 35.0, "Timestamp": f.now.Format(time.RFC3339)}

		a, cmd := locate(noFix)
		if a.State != store.ActionDone || !strings.Contains(a.Error, "without a location fix") || !strings.Contains(a.Error, "held none") {
			t.Errorf("never located, then no fix: the action is %s, %q", a.State, a.Error)
		}
		if cmd.State != store.CommandAcknowledged || !strings.Contains(mdm.NoLocationStored(cmd), "without a location fix") || mdm.ErrorSummary(cmd.ErrorChain) == "" {
			t.Errorf("its command: %s, %s", cmd.State, cmd.ErrorChain)
		}
		if _, ok := f.fields(dev.ID)["location.coordinates"]; ok {
			t.Error("an answer without a fix stored a location")
		}

		a, cmd = locate(fix)
		if a.State != store.ActionDone || a.Error != "" || cmd.ErrorChain != "" || mdm.NoLocationStored(cmd) != "" {
			t.Errorf("a fix: the action is %s, %q; its command's chain %q", a.State, a.Error, cmd.ErrorChain)
		}
		stored, ok := f.fields(dev.ID)["location.coordinates"]
		if !ok {
			t.Fatal("a fix stored no location")
		}

		f.now = f.now.Add(time.Hour)
		a, _ = locate(noFix)
		if want := "received " + stored.CollectedAt.UTC().Format(time.RFC3339); a.State != store.ActionDone || !strings.Contains(a.Error, want) {
			t.Errorf("no fix after a fix: the action is %s, %q; want it done, saying %q", a.State, a.Error, want)
		}
		if again := f.fields(dev.ID)["location.coordinates"]; !reflect.DeepEqual(again, stored) {
			t.Errorf("an answer without a fix changed the last known location: %+v, was %+v", again, stored)
		}

		// A fix older than the location's retention (a device whose clock
		// is far off) is not stored, and the action says why.
		stale := maps.Clone(fix)
		stale["Timestamp"] = f.now.Add(-8 * 24 * time.Hour).Format(time.RFC3339)
		a, cmd = locate(stale)
		if a.State != store.ActionDone || !strings.Contains(a.Error, "older than the location's retention") ||
			!strings.Contains(mdm.NoLocationStored(cmd), "older than") {
			t.Errorf("a stale fix: the action is %s, %q; its command's chain %q", a.State, a.Error, cmd.ErrorChain)
		}
		if again := f.fields(dev.ID)["location.coordinates"]; !reflect.DeepEqual(again, stored) {
			t.Errorf("a stale fix changed the last known location: %+v, was %+v", again, stored)
		}

		// The policy stops keeping locations while a locate is on its way.
		b, err := acts.Submit(f.ctx, f.tenant, actions.Request{Action: actions.Locate, Reason: "left in a taxi on Friday",
			DeviceIDs: []string{dev.ID}}, device.Everything(), "admin:"+admin.ID, admin)
		if err != nil {
			t.Fatal(err)
		}
		sent := command(t, d, map[string]any{"Status": "Idle"})
		if res, err := f.priv.RequestPolicyChange(f.ctx, f.tenant, privacy.PolicyChangeInput{Reason: "the works council asked for it",
			Changes: []privacy.Change{{Ownership: privacy.Corporate, Category: privacy.Location, Mode: privacy.Drop}}}, "admin-a", admin); err != nil || !res.Applied {
			t.Fatalf("dropping locations: %+v, %v", res, err)
		}
		msg := map[string]any{"Status": "Acknowledged", "CommandUUID": sent.CommandUUID, "RequestType": sent.RequestType}
		maps.Copy(msg, fix)
		if _, err := d.Send(f.ctx, msg); err != nil {
			t.Fatal(err)
		}
		if _, as, err := acts.Status(f.ctx, f.tenant, b.ID); err != nil || len(as) != 1 || as[0].State != store.ActionDone ||
			!strings.Contains(as[0].Error, "stopped keeping locations") {
			t.Errorf("a fix after the policy dropped locations: %+v, %v", as, err)
		}
		if _, ok := f.fields(dev.ID)["location.coordinates"]; ok {
			t.Error("a location was kept after the policy dropped them")
		}
	})
}
