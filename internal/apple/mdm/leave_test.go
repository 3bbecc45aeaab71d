package mdm_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestDepartureClosesTheChannel: however a device leaves (its CheckOut, or
// deprovisioning from the console), its open commands are cancelled with
// their sealed payloads, its channel stops holding tokens, and its identity
// certificate can no longer be renewed. A device still managed can renew.
func TestDepartureClosesTheChannel(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()

	var refused *sim.RefusedError

	checkedOut, dev := f.enrolledWith(ts, privacy.Corporate, "", supervised)
	cmds := pendingCommands(t, f, checkedOut, dev)
	if _, err := checkedOut.Checkin(f.ctx, checkedOut.CheckOut()); err != nil {
		t.Fatal(err)
	}
	checkChannelClosed(t, f, "CheckOut", dev, cmds)
	if err := checkedOut.RenewIdentity(f.ctx); !errors.As(err, &refused) {
		t.Errorf("a checked-out device renewed its certificate: %v", err)
	}

	deprovisioned, dev := f.enrolledWith(ts, privacy.Corporate, "", supervised)
	cmds = pendingCommands(t, f, deprovisioned, dev)
	if _, err := f.priv.DeprovisionDevice(f.ctx, f.tenant, dev.ID, "the laptop was sold", admin); err != nil {
		t.Fatal(err)
	}
	checkChannelClosed(t, f, "deprovisioning", dev, cmds)
	for range 2 { // and again: the refusal is not a one-off
		if err := deprovisioned.RenewIdentity(f.ctx); !errors.As(err, &refused) {
			t.Errorf("a deprovisioned device renewed its certificate: %v", err)
		}
	}

	managed, dev := f.enrolled(ts, privacy.Corporate, "")
	if err := managed.RenewIdentity(f.ctx); err != nil {
		t.Fatalf("a managed device could not renew: %v", err)
	}
	var binding struct {
		NotAfter time.Time `json:"not_after"`
	}
	raw, err := f.st.Read().Settings().Get(f.ctx, "mdm-cert:"+hex.EncodeToString(mdm.Fingerprint(managed.Certificate())))
	if err != nil || json.Unmarshal(raw, &binding) != nil || !binding.NotAfter.Equal(managed.Certificate().NotAfter) {
		t.Errorf("the renewed certificate's binding %s (%v) does not carry its expiry", raw, err)
	}
	if _, err := managed.Poll(f.ctx); err != nil {
		t.Fatalf("the renewed certificate was not accepted: %v", err)
	}
	if ch, _ := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID); !bytes.Equal(ch.CertFingerprint, mdm.Fingerprint(managed.Certificate())) {
		t.Error("the channel did not move to the renewed certificate")
	}
}

// pendingCommands leaves the enrolled, supervised device d a lock it was sent and never
// answered and a restart still queued.
func pendingCommands(t *testing.T, f *fixture, d *sim.Device, dev store.Device) []store.Command {
	t.Helper()
	if _, err := d.Poll(f.ctx); err != nil { // the initial inventory
		t.Fatal(err)
	}
	lock, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.DeviceLock{Message: "Lost", PIN: mdmproto.SecretString("123456")}, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	restart, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.RestartDevice{}, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	command(t, d, map[string]any{"Status": "Idle"}) // the lock is sent, never answered
	return append(lock, restart...)
}

// checkChannelClosed checks that dev's commands cmds were cancelled with
// their payloads and its channel closed without tokens.
func checkChannelClosed(t *testing.T, f *fixture, how string, dev store.Device, cmds []store.Command) {
	t.Helper()
	for _, c := range cmds {
		got, err := f.st.Read().Commands().Get(f.ctx, f.tenant, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.CommandCancelled || len(got.Payload) != 0 {
			t.Errorf("%s: %s command is %s with %d payload bytes, want cancelled and emptied", how, got.RequestType, got.State, len(got.Payload))
		}
	}
	ch, err := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !ch.CheckedOut || ch.PushToken != nil || ch.UnlockToken != nil || ch.Bootstrap != nil || len(ch.ChannelIndex) != 0 {
		t.Errorf("%s: channel still open or holding tokens or its device index: %+v", how, ch)
	}
}

// TestErasureForgetsErrorText: a corporate device's error descriptions,
// kept with its failed commands and able to name what is on it, lose their
// text when its person is erased and the device stays managed; Apple's
// domain and code stay.
func TestErasureForgetsErrorText(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		setDiagnostics(t, f, privacy.Corporate, privacy.Show)
		ts := f.serve()
		erika := f.subject("erika@acme.test")
		d, dev := f.enrolled(ts, privacy.Corporate, erika)
		id := failProfileList(t, f, d, dev, []map[string]any{
			{"ErrorCode": 4001, "ErrorDomain": "MCProfileErrorDomain", "LocalizedDescription": "The profile “Erika's family VPN” could not be removed."}})
		if c, _ := f.st.Read().Commands().Get(f.ctx, f.tenant, id); !strings.Contains(c.ErrorChain, "family VPN") {
			t.Fatalf("precondition: a corporate device's error text is kept: %s", c.ErrorChain)
		}
		// A failure in Steward's own words, which names no domain.
		own := failProfileList(t, f, d, dev, []map[string]any{{"ErrorCode": 1, "ErrorDomain": "MCProfileErrorDomain"}})
		if err := f.st.Tx(f.ctx, func(q store.Queries) error {
			return q.Commands().SetErrorChain(f.ctx, f.tenant, own, `[{"LocalizedDescription":"not sent: the device is leaving management"}]`)
		}); err != nil {
			t.Fatal(err)
		}
		signed, err := f.priv.EraseSubject(f.ctx, f.tenant, erika, "erasure request of 2026-12-06", admin)
		if err != nil {
			t.Fatal(err)
		}
		c, err := f.st.Read().Commands().Get(f.ctx, f.tenant, id)
		if err != nil {
			t.Fatal(err)
		}
		var chain []mdmproto.ErrorChainItem
		if err := json.Unmarshal([]byte(c.ErrorChain), &chain); err != nil || len(chain) != 1 ||
			chain[0] != (mdmproto.ErrorChainItem{ErrorCode: 4001, ErrorDomain: "MCProfileErrorDomain"}) {
			t.Errorf("after the erasure the command's error chain is %s, want the domain and code only", c.ErrorChain)
		}
		if c, err = f.st.Read().Commands().Get(f.ctx, f.tenant, own); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(c.ErrorChain), &chain); err != nil || len(chain) != 1 || chain[0] != (mdmproto.ErrorChainItem{}) {
			t.Errorf("after the erasure Steward's own failure is %s, want it bare and still naming no domain", c.ErrorChain)
		}
		var cert privacy.Certificate
		if err := json.Unmarshal([]byte(signed.Certificate), &cert); err != nil || cert.RowsRemoved["command_error_texts"] != 2 {
			t.Errorf("deletion certificate: %+v, %v", cert.RowsRemoved, err)
		}
	})
}

// TestDepartedChannelsSwept: devices that left before departures closed
// their channels (an older Steward) get them closed by the sweep, once;
// managed devices keep theirs.
func TestDepartedChannelsSwept(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	var left []store.Device
	var cmds [][]store.Command
	for range 3 {
		d, dev := f.enrolledWith(ts, privacy.Corporate, "", supervised)
		cmds = append(cmds, pendingCommands(t, f, d, dev))
		// As an older Steward left it: deprovisioned, channel untouched.
		dev, err := f.st.Read().Devices().Get(f.ctx, f.tenant, dev.ID)
		if err != nil {
			t.Fatal(err)
		}
		dev.State, dev.DeprovisionedAt = store.DeviceDeprovisioned, time.Now()
		if err := f.st.Tx(f.ctx, func(q store.Queries) error { return q.Devices().Update(f.ctx, dev) }); err != nil {
			t.Fatal(err)
		}
		left = append(left, dev)
	}
	_, managed := f.enrolled(ts, privacy.Corporate, "")

	for _, want := range []int{2, 1, 0} { // batches of 2; the short one ends the sweep
		if n, err := f.svc.CloseDepartedChannels(f.ctx, 2); err != nil || n != want {
			t.Fatalf("sweep closed %d channels (%v), want %d", n, err, want)
		}
	}
	for i, dev := range left {
		checkChannelClosed(t, f, "swept", dev, cmds[i])
	}
	if ch, err := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, managed.ID); err != nil || ch.CheckedOut || ch.PushToken == nil {
		t.Fatalf("the sweep closed a managed device's channel: %+v, %v", ch, err)
	}
	if _, err := f.st.Read().Settings().Get(f.ctx, "mdm.departed-channels-swept"); err != nil {
		t.Fatalf("the finished sweep was not recorded: %v", err)
	}
}

// TestUnfinishedEnrolmentIsClosed: a device that sent Authenticate and never
// its first TokenUpdate (its profile failed to install) is deprovisioned a
// day later, with what Authenticate reported; finished devices and devices
// registered by an admin stay.
func TestUnfinishedEnrolmentIsClosed(t *testing.T) {
	storetest.ForEachEngine(t, testUnfinishedEnrolmentIsClosed)
}

func testUnfinishedEnrolmentIsClosed(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Corporate)
	ts := f.serve()
	_, enrolled := f.enrolled(ts, privacy.Corporate, "")
	stuck, _ := sim.New(ts.Client(), false)
	if err := stuck.Prepare(f.ctx, f.invite(privacy.Corporate, ""), false); err != nil {
		t.Fatal(err)
	}
	if err := stuck.Authenticate(f.ctx); err != nil {
		t.Fatal(err)
	}
	ch, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(stuck.Certificate()))
	if err != nil {
		t.Fatal(err)
	}
	registered, err := f.priv.RegisterDevice(f.ctx, f.tenant, privacy.DeviceInput{Ownership: "corporate", Platform: "macos"}, admin)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.CloseUnfinishedEnrolments(f.ctx, 100); err != nil || n != 0 {
		t.Fatalf("within the day: closed %d, %v", n, err)
	}
	f.svc.SetClock(func() time.Time { return time.Now().Add(25 * time.Hour) })
	if n, err := f.svc.CloseUnfinishedEnrolments(f.ctx, 100); err != nil || n != 1 {
		t.Fatalf("a day later: closed %d, %v; want the one stuck device", n, err)
	}
	for id, want := range map[string]string{ch.DeviceID: store.DeviceDeprovisioned, enrolled.ID: store.DeviceEnrolled, registered.ID: store.DevicePending} {
		if d, err := f.st.Read().Devices().Get(f.ctx, f.tenant, id); err != nil || d.State != want {
			t.Errorf("device %s: %s, %v; want %s", id, d.State, err, want)
		}
	}
	if c, _ := f.st.Read().AppleChannels().Get(f.ctx, f.tenant, ch.DeviceID); !c.CheckedOut {
		t.Error("the unfinished enrolment's channel is still open")
	}
}

// TestUserEnrolledMacChecksOutNamingItsUDID: a user-enrolled Mac may name
// its UDID beside its EnrollmentID when it checks out (Apple forbids that
// only on iOS and visionOS). The CheckOut is its own, not refused as
// naming another device: the Mac leaves.
func TestUserEnrolledMacChecksOutNamingItsUDID(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	ts := f.serve()
	mac, dev := f.enrolledWith(ts, privacy.UserEnrolled, f.subject("erika@acme.test"), func(d *sim.Device) {
		d.ProductName, d.Model, d.OSVersion = "MacBookPro18,3", "MacBookPro18,3", "15.1"
	})
	checkOut := mac.CheckOut()
	checkOut["UDID"] = "0000FE00-0A1B2C3D4E5F6071"
	if _, err := mac.Checkin(f.ctx, checkOut); err != nil {
		t.Fatalf("CheckOut naming the UDID too: %v", err)
	}
	if got, err := f.st.Read().Devices().Get(f.ctx, f.tenant, dev.ID); err != nil || !got.Left() {
		t.Errorf("after its CheckOut the Mac is %q (%v), want it gone from management", got.State, err)
	}
}
