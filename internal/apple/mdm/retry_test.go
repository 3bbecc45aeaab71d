package mdm_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestFailedInstallationTriesAgain: a profile that failed to install after
// its Authenticate leaves a pending record; the same link then offers the
// profile again, and the retry takes that record over with a new identity
// (the first one is refused from then on), once the first attempt has been
// quiet for two minutes. Once the device finished, the link is used up.
func TestFailedInstallationTriesAgain(t *testing.T) {
	storetest.ForEachEngine(t, testFailedInstallationTriesAgain)
}

func testFailedInstallationTriesAgain(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Personal)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	link := f.invite(privacy.Personal, erika)
	failed, _ := sim.New(ts.Client(), false)
	failed.Personal = true
	if err := failed.Prepare(f.ctx, link, false); err != nil {
		t.Fatal(err)
	}
	if err := failed.Authenticate(f.ctx); err != nil {
		t.Fatal(err)
	}
	first, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(failed.Certificate()))
	if err != nil {
		t.Fatal(err)
	}
	// An installation takes seconds: for two minutes the link waits, so
	// that nobody else holding it can cut in on one going well.
	if resp, err := ts.Client().Get(link); err != nil || resp.StatusCode != http.StatusConflict {
		t.Fatalf("the invitation right after Authenticate: %v, %v; want 409", resp, err)
	}
	f.svc.SetClock(func() time.Time { return time.Now().Add(3 * time.Minute) })
	if page := invitationPage(t, ts, link); !strings.Contains(page, "did not finish") || !strings.Contains(page, "/profile") {
		t.Fatalf("the invitation after a failed installation does not offer the profile again:\n%s", page)
	}

	// Any device may try again (the employee may have picked up another).
	retry, _ := sim.New(ts.Client(), false)
	retry.Personal = true
	if err := retry.Enrol(f.ctx, link, false); err != nil {
		t.Fatalf("trying again with the same link: %v", err)
	}
	ch, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(retry.Certificate()))
	if err != nil || ch.DeviceID != first.DeviceID {
		t.Fatalf("the retry's channel: %+v, %v; want the pending record %s taken over", ch, err, first.DeviceID)
	}
	if got := f.deviceState(first.DeviceID); got != store.DeviceEnrolled {
		t.Errorf("the record is %s after the retry; want enrolled", got)
	}
	devices, err := f.st.Read().Devices().List(f.ctx, f.tenant, store.DeviceFilter{})
	if err != nil || len(devices) != 1 {
		t.Errorf("%d device records after the retry (%v); want 1", len(devices), err)
	}
	if _, err := failed.Checkin(f.ctx, failed.TokenUpdate()); status(t, err) != http.StatusForbidden {
		t.Errorf("the first attempt's identity after the retry: %v; want 403", err)
	}
	if _, err := retry.Poll(f.ctx); err != nil {
		t.Errorf("the enrolled device, another one than tried first, polls: %v", err)
	}
	again, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.authenticate", TargetID: first.DeviceID})
	if err != nil || len(again) != 2 || !strings.Contains(string(again[1].Details), `"again":true`) {
		t.Errorf("Authenticate audited as %+v, %v; want the retry marked", again, err)
	}

	// Finished: the link is used up, for a download and for a device.
	if resp, err := ts.Client().Get(link + "/profile"); err != nil || resp.StatusCode != http.StatusConflict {
		t.Errorf("downloading the profile after enrolment: %v, %v; want 409", resp, err)
	}
	late, _ := sim.New(ts.Client(), false)
	if err := late.Enrol(f.ctx, link, false); err == nil {
		t.Error("a third device enrolled with a used-up link")
	}
}

func invitationPage(t *testing.T, ts *httptest.Server, link string) string {
	t.Helper()
	resp, err := ts.Client().Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the invitation: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// TestRetryRacesTheFirstAttempt: a retry's Authenticate and the first
// attempt's late TokenUpdate, both waiting on the device's lock (held here
// meanwhile), cannot both win: whichever goes second is refused, so the
// channel never holds one device's identity with the other's push token.
// PostgreSQL only: SQLite runs one transaction at a time.
func TestRetryRacesTheFirstAttempt(t *testing.T) {
	st := storetest.OpenPostgres(t)
	f := newFixture(t, st)
	first, retry, ch := f.retrying()

	release := f.hold(func(q store.Queries) error {
		_, err := q.Devices().Lock(f.ctx, f.tenant, ch.DeviceID)
		return err
	})
	authenticated, tokenSent := make(chan error, 1), make(chan error, 1)
	go func() { authenticated <- retry.Authenticate(f.ctx) }()
	storetest.AwaitLockWaiters(t, st, 1) // both wait on the lock, the retry first
	go func() { _, err := first.Checkin(f.ctx, first.TokenUpdate()); tokenSent <- err }()
	storetest.AwaitLockWaiters(t, st, 2)
	release()
	authErr, tokenErr := <-authenticated, <-tokenSent
	if (authErr == nil) == (tokenErr == nil) {
		t.Fatalf("retry Authenticate: %v; first attempt's TokenUpdate: %v; want exactly one to win", authErr, tokenErr)
	}
	after, err := st.Read().AppleChannels().Get(f.ctx, f.tenant, ch.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	winner, token := retry, []byte(nil) // the retry has sent no TokenUpdate yet
	if tokenErr == nil {
		winner, token = first, first.PushToken
	}
	if !bytes.Equal(after.CertFingerprint, mdm.Fingerprint(winner.Certificate())) || !bytes.Equal(after.PushToken, token) {
		t.Errorf("the channel mixes the two attempts: %+v", after)
	}
}

// TestRetryWaitsAndExpires: identities obtained before the first attempt's
// Authenticate (from earlier downloads of the profile) cannot take over
// while that attempt may still finish, nor once the link has expired.
func TestRetryWaitsAndExpires(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	ts := f.serve()
	link := f.invite(privacy.Personal, f.subject("erika@acme.test"))
	var devices [3]*sim.Device
	for i := range devices {
		devices[i], _ = sim.New(ts.Client(), false)
		devices[i].Personal = true
		if err := devices[i].Prepare(f.ctx, link, false); err != nil {
			t.Fatal(err)
		}
	}
	first, early, late := devices[0], devices[1], devices[2]
	if err := first.Authenticate(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := early.Authenticate(f.ctx); status(t, err) != http.StatusConflict {
		t.Errorf("a takeover while the first attempt may still finish: %v; want 409", err)
	}
	f.svc.SetClock(func() time.Time { return time.Now().Add(3 * time.Minute) })
	if err := early.Authenticate(f.ctx); err != nil {
		t.Errorf("a takeover once the first attempt was quiet: %v", err)
	}
	// The pending record has been quiet for days by then (nothing swept
	// it here), so only the link's expiry (and the installation window
	// after it, as for a first attempt) stands in the way.
	f.svc.SetClock(func() time.Time { return time.Now().Add(mdm.DefaultEnrolmentTTL + 2*time.Hour) })
	if err := late.Authenticate(f.ctx); status(t, err) != http.StatusConflict {
		t.Errorf("a takeover after the link expired and its installation window closed: %v; want 409", err)
	}
}

// hold runs lock in a transaction and keeps the transaction open until
// release is called: writers that need what lock took queue behind it.
func (f *fixture) hold(lock func(q store.Queries) error) (release func()) {
	f.t.Helper()
	return storetest.Hold(f.t, f.st, lock)
}

// retrying takes a personal enrolment through a first attempt that sent
// Authenticate and went quiet, then prepares a retry with the same link
// (notice, profile, identity) up to its Authenticate, which the caller
// sends. ch is the pending record's channel under the first identity.
func (f *fixture) retrying() (first, retry *sim.Device, ch store.AppleChannel) {
	f.t.Helper()
	f.publish(privacy.Personal)
	ts := f.serve()
	link := f.invite(privacy.Personal, f.subject("erika@acme.test"))
	attempt := func() *sim.Device {
		d, err := sim.New(ts.Client(), false)
		if err != nil {
			f.t.Fatal(err)
		}
		d.Personal = true
		if err := d.Prepare(f.ctx, link, false); err != nil {
			f.t.Fatal(err)
		}
		return d
	}
	first = attempt()
	if err := first.Authenticate(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	ch, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(first.Certificate()))
	if err != nil {
		f.t.Fatal(err)
	}
	f.svc.SetClock(func() time.Time { return time.Now().Add(3 * time.Minute) }) // the first attempt is quiet
	return first, attempt(), ch
}

// TestRetryDropsEscrowedTokens: a retry that takes over a pending record
// does not inherit the bootstrap token the first attempt's device escrowed:
// another device retrying with the same link must not be handed it.
func TestRetryDropsEscrowedTokens(t *testing.T) {
	storetest.ForEachEngine(t, testRetryDropsEscrowedTokens)
}

func testRetryDropsEscrowedTokens(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Corporate)
	ts := f.serve()
	link := f.invite(privacy.Corporate, "")
	attempt := func() *sim.Device {
		d, err := sim.New(ts.Client(), false)
		if err != nil {
			t.Fatal(err)
		}
		mac(d) // a Mac escrows a bootstrap token
		if err := d.Prepare(f.ctx, link, false); err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := attempt()
	if err := first.Authenticate(f.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Checkin(f.ctx, map[string]any{"MessageType": "SetBootstrapToken", "UDID": first.UDID,
		"BootstrapToken": []byte("first-device-secret")}); err != nil {
		t.Fatal(err)
	}
	held, err := st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(first.Certificate()))
	if err != nil {
		t.Fatal(err)
	}
	f.svc.SetClock(func() time.Time { return time.Now().Add(3 * time.Minute) }) // the first attempt is quiet
	retry := attempt()
	if err := retry.Authenticate(f.ctx); err != nil {
		t.Fatal(err)
	}
	ch, err := st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(retry.Certificate()))
	if err != nil || ch.Bootstrap != nil || ch.UnlockToken != nil {
		t.Fatalf("the retried channel: bootstrap %d bytes, unlock token %d bytes (%v); want neither", len(ch.Bootstrap), len(ch.UnlockToken), err)
	}
	if _, err := retry.Checkin(f.ctx, retry.TokenUpdate()); err != nil {
		t.Fatal(err)
	}
	out, err := retry.Checkin(f.ctx, map[string]any{"MessageType": "GetBootstrapToken", "UDID": retry.UDID})
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ BootstrapToken []byte }
	if _, err := plist.Unmarshal(out, &got); err != nil || len(got.BootstrapToken) != 0 {
		t.Errorf("the retry's device is handed a bootstrap token %q (%v); want none", got.BootstrapToken, err)
	}
	// Nor does a backup's copy of the first device's token open any more.
	if token, err := f.svc.OpenEscrowed(f.ctx, f.tenant, held.DeviceID, true, held.Bootstrap); !errors.Is(err, keys.ErrKeyDestroyed) {
		t.Errorf("the first device's bootstrap token, as a backup holds it: %q, %v; want %v", token, err, keys.ErrKeyDestroyed)
	}
}

// TestRetryForgetsTheFirstDevice: a retry by another device starts its
// record afresh. A Mac's installation failed after its Authenticate; an
// iPhone retrying with the same link (which names no person, so its holder
// may be anyone) must not find the Mac's name, model, serial number or
// history on its record, nor its projection, and the Mac's values in
// backups become unreadable with its key.
func TestRetryForgetsTheFirstDevice(t *testing.T) {
	storetest.ForEachEngine(t, testRetryForgetsTheFirstDevice)
}

func testRetryForgetsTheFirstDevice(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	f.publish(privacy.Corporate)
	ts := f.serve()
	link := f.invite(privacy.Corporate, "")
	attempt := func(adjust func(*sim.Device)) *sim.Device {
		d, err := sim.New(ts.Client(), false)
		if err != nil {
			t.Fatal(err)
		}
		adjust(d)
		if err := d.Prepare(f.ctx, link, false); err != nil {
			t.Fatal(err)
		}
		if err := d.Authenticate(f.ctx); err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := attempt(mac)
	ch, err := st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(first.Certificate()))
	if err != nil {
		t.Fatal(err)
	}
	before, err := st.Read().Devices().Get(f.ctx, f.tenant, ch.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	if fields := f.fields(ch.DeviceID); fields["device.name"].Value == nil || fields["hardware.model"].Value == nil {
		t.Fatalf("the Mac's Authenticate kept %v; want its name and model", fields)
	}
	// As the fleet's inventory hook would have projected the Mac.
	if err := st.Tx(f.ctx, func(q store.Queries) error {
		return q.ManagedDevices().SetProjection(f.ctx, store.DeviceProjection{TenantID: f.tenant, DeviceID: ch.DeviceID,
			Model: "Mac", OSVersion: "15.1", Facts: []byte(`{"hardware.model":"Mac"}`)})
	}); err != nil {
		t.Fatal(err)
	}

	f.svc.SetClock(func() time.Time { return time.Now().Add(3 * time.Minute) })
	iphone := attempt(func(*sim.Device) {})

	fields := f.fields(ch.DeviceID)
	for _, field := range []string{"device.name", "hardware.model"} {
		if v, ok := fields[field]; ok {
			t.Errorf("the iPhone's record shows the Mac's %s: %s", field, v.Value)
		}
	}
	if got := string(fields["os.name"].Value); got != `"ios"` {
		t.Errorf("os.name %s; want the iPhone's", got)
	}
	history, err := st.Read().Inventory().History(f.ctx, f.tenant, ch.DeviceID, 100)
	if err != nil || len(history) != 0 {
		t.Errorf("the record's history after the retry: %d values (%v); want none of the Mac's", len(history), err)
	}
	after, err := st.Read().Devices().Get(f.ctx, f.tenant, ch.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Platform != "ios" || after.Model != "" || after.OSVersion != "" {
		t.Errorf("the record after the retry: platform %q, model %q, OS %q; want ios and no projection of the Mac",
			after.Platform, after.Model, after.OSVersion)
	}
	for serial, want := range map[string]int{first.Serial: 0, iphone.Serial: 1} {
		if found, err := f.priv.FindDevicesBySerial(f.ctx, f.tenant, serial, store.Page{Limit: 10}); err != nil || len(found) != want {
			t.Errorf("devices found by serial %s: %d (%v); want %d", serial, len(found), err, want)
		}
	}
	old, err := st.Read().Keys().GetDataKey(f.ctx, f.tenant, before.KeyID)
	if err != nil || old.DestroyedAt.IsZero() {
		t.Errorf("the Mac's device key after the retry: %+v, %v; want it destroyed", old, err)
	}
	if after.KeyID == before.KeyID {
		t.Error("the record kept the Mac's key")
	}
}
