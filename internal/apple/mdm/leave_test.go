package mdm_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
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

	pending := func(d *sim.Device, dev store.Device) []store.Command {
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
	checkClosed := func(how string, dev store.Device, cmds []store.Command) {
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
		if !ch.CheckedOut || ch.PushToken != nil || ch.UnlockToken != nil || ch.Bootstrap != nil {
			t.Errorf("%s: channel still open or holding tokens: %+v", how, ch)
		}
	}
	var refused *sim.RefusedError

	checkedOut, dev := f.enrolled(ts, privacy.Corporate, "")
	cmds := pending(checkedOut, dev)
	if _, err := checkedOut.Checkin(f.ctx, checkedOut.CheckOut()); err != nil {
		t.Fatal(err)
	}
	checkClosed("CheckOut", dev, cmds)
	if err := checkedOut.RenewIdentity(f.ctx); !errors.As(err, &refused) {
		t.Errorf("a checked-out device renewed its certificate: %v", err)
	}

	deprovisioned, dev := f.enrolled(ts, privacy.Corporate, "")
	cmds = pending(deprovisioned, dev)
	if _, err := f.priv.DeprovisionDevice(f.ctx, f.tenant, dev.ID, "the laptop was sold", admin); err != nil {
		t.Fatal(err)
	}
	checkClosed("deprovisioning", dev, cmds)
	for range 2 { // the refused claim is not given back
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
