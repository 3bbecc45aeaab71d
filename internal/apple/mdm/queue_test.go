package mdm_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPutOffCommandIsPushedAgain: a device whose exchange ends on a result
// while a command it put off (NotNow) is still open waits for a push, as
// Apple documents; Steward schedules one so that command is not stranded.
// An exchange that ends on NotNow needs none: the device polls by itself.
func TestPutOffCommandIsPushedAgain(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Corporate, "")
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	pushDue := func() time.Time {
		t.Helper()
		ch, err := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID)
		if err != nil {
			t.Fatal(err)
		}
		return ch.PushDueAt
	}
	clearPush := func() { f.pushDelivered(dev.ID) }
	for _, req := range []mdmproto.Request{mdmproto.ProfileList{}, mdmproto.CertificateList{}} {
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, req, "", admin); err != nil {
			t.Fatal(err)
		}
	}
	clearPush()
	first := command(t, d, map[string]any{"Status": "Idle"})
	second := command(t, d, map[string]any{"Status": "NotNow", "CommandUUID": first.CommandUUID})
	if second.CommandUUID == first.CommandUUID {
		t.Fatal("the put-off command came back in the same exchange")
	}
	// Ending on NotNow: the device polls again by itself.
	if out, err := d.Send(f.ctx, map[string]any{"Status": "NotNow", "CommandUUID": second.CommandUUID}); err != nil || len(out) != 0 {
		t.Fatalf("the last NotNow: %q, %v", out, err)
	}
	if due := pushDue(); !due.IsZero() {
		t.Errorf("an exchange ending on NotNow scheduled a push at %v", due)
	}
	// Idle offers the first again; answered, the exchange ends on its
	// result with the second still put off.
	again := command(t, d, map[string]any{"Status": "Idle"})
	if again.CommandUUID != first.CommandUUID {
		t.Fatalf("after Idle: %+v, want the first put-off command", again)
	}
	if out, err := d.Send(f.ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": again.CommandUUID,
		"RequestType": again.RequestType, again.RequestType: []any{}}); err != nil || len(out) != 0 {
		t.Fatalf("the answer to the first: %q, %v", out, err)
	}
	if due := pushDue(); due.IsZero() || time.Until(due) > 10*time.Minute {
		t.Errorf("the put-off command left behind got no push soon (due %v)", due)
	}
}

// TestUndecodableResultKeepsNothing: a result that does not decode fails
// its command and leaves the inventory as it was; before, the empty values
// its decoder built replaced what the device had reported.
func TestUndecodableResultKeepsNothing(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Corporate, "")
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ManagedApplicationList{}, "", admin); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	before := f.fields(dev.ID)["apps.managed"].Value
	if len(before) < 10 {
		t.Fatalf("apps.managed before: %s", before)
	}
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ManagedApplicationList{}, "", admin); err != nil {
		t.Fatal(err)
	}
	sent := command(t, d, map[string]any{"Status": "Idle"})
	if _, err := d.Send(f.ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": sent.CommandUUID,
		"ManagedApplicationList": "not a dictionary"}); err != nil {
		t.Fatal(err)
	}
	got, err := f.st.Read().Commands().Get(f.ctx, f.tenant, sent.CommandUUID)
	if err != nil || got.State != store.CommandError {
		t.Fatalf("the command answered with garbage: %+v, %v", got, err)
	}
	if after := f.fields(dev.ID)["apps.managed"].Value; !json.Valid(after) || string(after) != string(before) {
		t.Errorf("apps.managed changed by an undecodable result: %s, was %s", after, before)
	}
}

// TestNonFiniteNumberFailsTheCommand: a result holding a NaN or infinite
// number does not decode, so its command finishes as failed and the device
// gets its 200. Before, the number passed the decoder, the gate could not
// encode it, the device got a 500 and the command stayed sent.
func TestNonFiniteNumberFailsTheCommand(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Corporate, "")
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DeviceInformation{Queries: []string{"BatteryLevel"}}, "", admin); err != nil {
			t.Fatal(err)
		}
		sent := command(t, d, map[string]any{"Status": "Idle"})
		if _, err := d.Send(f.ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": sent.CommandUUID, "RequestType": "DeviceInformation",
			"QueryResponses": map[string]any{"BatteryLevel": n}}); err != nil {
			t.Fatalf("BatteryLevel %v: %v", n, err)
		}
		got, err := f.st.Read().Commands().Get(f.ctx, f.tenant, sent.CommandUUID)
		if err != nil || got.State != store.CommandError {
			t.Fatalf("BatteryLevel %v: %+v, %v, want the command failed", n, got, err)
		}
	}
}

// TestDeviceNamedTwiceGetsOneCommand: a bulk request naming a device twice
// queues one command for it.
func TestDeviceNamedTwiceGetsOneCommand(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	_, dev := f.enrolled(ts, privacy.Corporate, "")
	_, other := f.enrolled(ts, privacy.Corporate, "")
	cmds, skipped, err := f.svc.EnqueueBulk(f.ctx, f.tenant, []string{dev.ID, dev.ID, other.ID, dev.ID}, mdmproto.SecurityInfo{}, "", admin)
	if err != nil || len(cmds) != 2 || len(skipped) != 0 {
		t.Fatalf("bulk with a device named three times: %d commands, skipped %v, %v; want one each", len(cmds), skipped, err)
	}
}
