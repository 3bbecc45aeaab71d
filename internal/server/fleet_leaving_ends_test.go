package server

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// queueAsIfEnrolled queues reqs for the device as a request that read it
// before it started leaving would (a bulk request racing the withdrawal).
func (f *testFleet) queueAsIfEnrolled(deviceID string, reqs ...mdmproto.Request) []store.Command {
	f.t.Helper()
	var cmds []store.Command
	if err := f.app.Store.Tx(f.ctx, func(q store.Queries) error {
		d, err := q.Devices().Get(f.ctx, f.tenant, deviceID)
		if err != nil {
			return err
		}
		d.State = store.DeviceEnrolled // as read before the withdrawal
		cmds, err = f.app.MDM.EnqueueIn(f.ctx, q, d, reqs, "read before the withdrawal", iam.SystemActor)
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return cmds
}

// TestLeavingDeviceIsSentNoOtherProfileRemoval: a RemoveProfile of another
// profile, queued past the withdrawal, is not sent to the leaving phone: it
// fails unsent, and the phone gets its management profile's removal only.
func TestLeavingDeviceIsSentNoOtherProfileRemoval(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		phone, phoneID := f.leavingPhone()
		other := f.queueAsIfEnrolled(phoneID, mdmproto.RemoveProfile{Identifier: "com.example.wifi"})

		phone.RefuseRemovals = true // answers, and stays
		if n, err := phone.Poll(f.ctx); err != nil || n != 1 {
			t.Fatalf("the leaving phone answered %d commands (%v), want its management profile's removal only", n, err)
		}
		c, err := f.app.Store.Read().Commands().Get(f.ctx, f.tenant, other[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != store.CommandError || !c.SentAt.IsZero() || !strings.Contains(c.ErrorChain, "leaving management") {
			t.Errorf("the other profile's removal: %s, sent at %v, %s; want failed unsent", c.State, c.SentAt, c.ErrorChain)
		}
		if acts := f.retireActions(phoneID); len(acts) != 1 || acts[0].State != store.ActionFailed {
			t.Errorf("the withdrawal's retire: %+v, want failed by the phone's refusal", acts)
		}
	})
}

// expireCertificateIn moves the device's identity certificate's expiry to
// the given time from now.
func (f *testFleet) expireCertificateIn(deviceID string, in time.Duration) {
	f.t.Helper()
	f.certificateExpiresAt(deviceID, time.Now().Add(in))
}

// TestWithdrawalKeepsAPendingIdentityRenewal: a renewal queued just before
// the withdrawal stays queued (no other is queued for days), and the
// leaving phone installs it beside its removal: its channel outlives the
// certificate that was about to expire.
func TestWithdrawalKeepsAPendingIdentityRenewal(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var renewal string
		phone, phoneID := f.leavingPhoneAfter(func(phoneID string) {
			f.expireCertificateIn(phoneID, 20*24*time.Hour)
			if n, err := f.app.MDM.RenewIdentities(f.ctx, 100); err != nil || n != 1 {
				t.Fatalf("renewals queued: %d, %v; want 1", n, err)
			}
			ch, err := f.app.Store.Read().AppleChannels().Get(f.ctx, f.tenant, phoneID)
			if err != nil {
				t.Fatal(err)
			}
			renewal = ch.RenewalCommand
		})
		if c, err := f.app.Store.Read().Commands().Get(f.ctx, f.tenant, renewal); err != nil || c.State != store.CommandQueued {
			t.Fatalf("after the withdrawal the pending renewal is %s (%v), want still queued", c.State, err)
		}

		before := phone.Certificate()
		phone.RefuseRemovals = true // it answers the removal, then installs its renewal
		if n, err := phone.Poll(f.ctx); err != nil || n != 2 {
			t.Fatalf("the leaving phone answered %d commands (%v), want its removal and its renewal", n, err)
		}
		ch, err := f.app.Store.Read().AppleChannels().Get(f.ctx, f.tenant, phoneID)
		if err != nil {
			t.Fatal(err)
		}
		if phone.Certificate().SerialNumber.Cmp(before.SerialNumber) == 0 || !bytes.Equal(ch.CertFingerprint, mdm.Fingerprint(phone.Certificate())) {
			t.Error("the pending renewal did not renew the leaving phone's identity")
		}
	})
}

// TestComplianceLadderSkipsLeavingDevices: a ladder step that fell due for
// a phone before its employee withdrew consent neither locks nor asks to
// retire the leaving phone: its ladder stops, and its only action stays
// the withdrawal's removal.
func TestComplianceLadderSkipsLeavingDevices(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, phoneID := f.leavingPhoneAfter(func(phoneID string) {
			ladder := compliance.Ladder{{Action: compliance.StepLock}, {Action: compliance.StepRetire}}
			f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Platform: "ios", Name: "Current OS",
				Rules: compliance.Rules{MinOSVersion: "99.0"}, Ladder: &ladder}, nil)
			standings, err := f.app.Store.Read().Compliance().Standings(f.ctx, f.tenant, phoneID)
			if err != nil || len(standings) != 1 || standings[0].NextStepAt.IsZero() {
				t.Fatalf("precondition: the phone's ladder is due: %+v, %v", standings, err)
			}
		})
		for range 3 {
			if _, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil {
				t.Fatal(err)
			}
		}
		var acts api.List[api.ActionView]
		f.must(200, f.owner, "GET", f.path("/devices/"+phoneID+"/actions"), nil, &acts)
		if len(acts.Items) != 1 || acts.Items[0].Action != string(actions.Retire) || acts.Items[0].State != store.ActionQueued {
			t.Errorf("the leaving phone's actions: %+v, want only the withdrawal's queued retire", acts.Items)
		}
		standings, err := f.app.Store.Read().Compliance().Standings(f.ctx, f.tenant, phoneID)
		if err != nil || len(standings) != 1 || !standings[0].NextStepAt.IsZero() || standings[0].Steps != 0 {
			t.Errorf("the leaving phone's ladder: %+v, %v; want stopped before any step", standings, err)
		}
	})
}

// assertGaveUp checks that Steward stopped telling the leaving device to
// leave, once, for a reason containing why: its last retire failed saying
// so, no removal is open, and the device is still leaving.
func (f *testFleet) assertGaveUp(deviceID, why string) {
	f.t.Helper()
	acts := f.retireActions(deviceID)
	if len(acts) == 0 || acts[0].State != store.ActionFailed || !strings.Contains(acts[0].Error, "Steward stopped") ||
		!strings.Contains(acts[0].Error, why) || !strings.Contains(acts[0].Error, "deprovision") {
		f.t.Fatalf("the last retire: %+v, want failed saying Steward stopped because %s", acts, why)
	}
	if c, err := f.app.Store.Read().Commands().Get(f.ctx, f.tenant, acts[0].CommandID); err != nil || store.CommandOpen(c.State) {
		f.t.Errorf("the last removal is %s (%v), want no longer open", c.State, err)
	}
	entries, err := f.app.Store.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.leave.gave_up"})
	if err != nil || len(entries) != 1 || entries[0].TargetID != deviceID || !strings.Contains(entries[0].Reason, why) {
		f.t.Errorf("the audit of the end: %+v, %v; want one, saying %q", entries, err, why)
	}
	if d := f.device(f.owner, deviceID); d.State != store.DeviceLeaving {
		f.t.Errorf("after Steward stopped: %q, want leaving", d.State)
	}
}

// at moves the clocks of actions and device management to t: a device
// checking in is seen then.
func (f *testFleet) at(t time.Time) {
	f.app.Actions.SetClock(func() time.Time { return t })
	f.app.MDM.SetClock(func() time.Time { return t })
}

// certificateExpiresAt moves the device's identity certificate's expiry to t.
func (f *testFleet) certificateExpiresAt(deviceID string, t time.Time) {
	f.t.Helper()
	if err := f.app.Store.Tx(f.ctx, func(q store.Queries) error {
		ch, err := q.AppleChannels().Get(f.ctx, f.tenant, deviceID)
		if err != nil {
			return err
		}
		ch.CertNotAfter = t
		return q.AppleChannels().Update(f.ctx, ch)
	}); err != nil {
		f.t.Fatal(err)
	}
}

// assertStillTold checks that Steward still tells the leaving device to
// leave: its only retire is queued, not final, and nothing was given up.
func (f *testFleet) assertStillTold(deviceID string) {
	f.t.Helper()
	acts := f.retireActions(deviceID)
	if len(acts) != 1 || acts[0].State != store.ActionQueued {
		f.t.Fatalf("the retires: %+v, want the withdrawal's only, still queued", acts)
	}
	a, err := f.app.Store.Read().Actions().Get(f.ctx, f.tenant, acts[0].ID)
	if err != nil || a.Final {
		f.t.Errorf("the withdrawal's retire is final (%v), want it to go on", err)
	}
	if c, err := f.app.Store.Read().Commands().Get(f.ctx, f.tenant, acts[0].CommandID); err != nil || c.State != store.CommandQueued {
		f.t.Errorf("the removal is %s (%v), want queued", c.State, err)
	}
	entries, err := f.app.Store.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.leave.gave_up"})
	if err != nil || len(entries) != 0 {
		f.t.Errorf("Steward gave up: %+v, %v", entries, err)
	}
}

// TestLeavingDeviceSilentForAMonthKeepsItsRemoval: a leaving phone that
// stays silent for thirty days (left in a drawer, its identity valid for
// months) keeps its removal queued, but its identity is no longer renewed:
// no renewal profile is queued and SCEP refuses it. Checking in again, it
// is no longer silent: it is renewed again and gets its removal, which
// retires it.
func TestLeavingDeviceSilentForAMonthKeepsItsRemoval(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		phone, phoneID := f.leavingPhone()
		now := time.Now()
		day := 24 * time.Hour

		for _, after := range []time.Duration{29 * day, 31 * day} {
			f.at(now.Add(after))
			if n := f.retellAt(now, after); n != 0 {
				t.Fatalf("after %s a queued removal was sent again (%d)", after, n)
			}
			f.assertStillTold(phoneID)
		}

		f.certificateExpiresAt(phoneID, now.Add(51*day)) // in the renewal window, valid still
		if n, err := f.app.MDM.RenewIdentities(f.ctx, 100); err != nil || n != 0 {
			t.Errorf("renewals queued for a phone silent for a month: %d, %v; want none", n, err)
		}
		var refused *sim.RefusedError
		if err := phone.RenewIdentity(f.ctx); !errors.As(err, &refused) {
			t.Errorf("a phone silent for a month renewing its identity by SCEP: %v; want it refused", err)
		}
		f.retellAt(now, 31*day)
		f.assertStillTold(phoneID)

		// Day 42: the phone is back.
		f.at(now.Add(42 * day))
		f.certificateExpiresAt(phoneID, now.Add(62*day))
		removal := nextCommand(t, f, phone)
		if removal.Command.RequestType != string(mdmproto.RequestRemoveProfile) {
			t.Fatalf("the phone back after six weeks was sent %+v, want its removal", removal.Command)
		}
		if n, err := f.app.MDM.RenewIdentities(f.ctx, 100); err != nil || n != 1 {
			t.Errorf("renewals queued for the phone back: %d, %v; want 1", n, err)
		}
		if _, err := phone.Send(f.ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": removal.CommandUUID}); err != nil {
			t.Fatal(err)
		}
		if d := f.device(f.owner, phoneID); d.State != store.DeviceRetired {
			t.Errorf("after it acknowledged its removal: %q, want retired", d.State)
		}
		f.assertErased(phoneID)
	})
}

// TestLeavingDeviceSilentUntilItsIdentityExpiresIsGivenUp: a leaving phone
// silent for a month and then until its identity certificate expired can
// never be told: Steward stops as after the last attempt, once. Its removal
// and the renewal kept at the withdrawal are cancelled (the renewal's
// payload holds a SCEP challenge), so it is sent nothing, and an admin can
// still deprovision it.
func TestLeavingDeviceSilentUntilItsIdentityExpiresIsGivenUp(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var renewal string
		phone, phoneID := f.leavingPhoneAfter(func(phoneID string) {
			renewal = f.queueRenewal(phoneID)
		})
		now := time.Now()
		day := 24 * time.Hour

		f.certificateExpiresAt(phoneID, now.Add(40*day))
		f.retellAt(now, 31*day)
		f.assertStillTold(phoneID)
		for _, after := range []time.Duration{41 * day, 60 * day} { // and again: the end holds
			if n := f.retellAt(now, after); n != 0 {
				t.Fatalf("after %s the removal was sent again %d times", after, n)
			}
		}
		f.assertGaveUp(phoneID, "identity certificate expired")
		if acts := f.retireActions(phoneID); len(acts) != 1 {
			t.Errorf("%d retires, want the withdrawal's only", len(acts))
		}
		if c, err := f.app.Store.Read().Commands().Get(f.ctx, f.tenant, renewal); err != nil || c.State != store.CommandCancelled || len(c.Payload) != 0 {
			t.Errorf("the kept renewal is %s with %d bytes of payload (%v), want cancelled with none", c.State, len(c.Payload), err)
		}
		if n, err := phone.Poll(f.ctx); err != nil || n != 0 {
			t.Errorf("the phone Steward gave up on answered %d commands (%v), want none", n, err)
		}
		f.must(200, f.owner, "POST", f.path("/devices/"+phoneID+"/deprovision"), api.ReasonRequest{Reason: "the phone never came back"}, nil)
		if d := f.device(f.owner, phoneID); d.State != store.DeviceDeprovisioned {
			t.Errorf("a leaving device deprovisioned after Steward stopped: %q", d.State)
		}
	})
}

// TestLeavingDeviceWithAnExpiredIdentityIsGivenUp: once a leaving phone's
// identity certificate expired it can never be told: Steward stops at the
// next run, its queued removal cancelled.
func TestLeavingDeviceWithAnExpiredIdentityIsGivenUp(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, phoneID := f.leavingPhone()
		f.expireCertificateIn(phoneID, time.Hour)
		now := time.Now()
		if n := f.retellAt(now, 0); n != 0 {
			t.Fatalf("told %d", n)
		}
		if acts := f.retireActions(phoneID); len(acts) != 1 || acts[0].State != store.ActionQueued {
			t.Fatalf("before the expiry: %+v, want the removal still queued", acts)
		}
		f.retellAt(now, 2*time.Hour)
		f.assertGaveUp(phoneID, "identity certificate expired")
	})
}

// TestLeavingDeviceExpiringWhileWaitingIsGivenUp: a leaving phone whose
// identity expires while its refused removal waits to be sent again is not
// sent it: Steward stops instead.
func TestLeavingDeviceExpiringWhileWaitingIsGivenUp(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		phone, phoneID := f.leavingPhone()
		phone.RefuseRemovals = true
		if n, err := phone.Poll(f.ctx); err != nil || n != 1 {
			t.Fatalf("the phone answered %d commands (%v), want its removal", n, err)
		}
		f.expireCertificateIn(phoneID, time.Hour)
		if n := f.retellAt(time.Now(), 2*time.Hour); n != 0 {
			t.Fatalf("a removal was sent again to a phone that can no longer be told (%d)", n)
		}
		f.assertGaveUp(phoneID, "identity certificate expired")
		if acts := f.retireActions(phoneID); len(acts) != 1 {
			t.Errorf("%d retires, want the refused one only", len(acts))
		}
	})
}

// queueRenewal queues the renewal of the device's identity, whose
// certificate is moved to expire in 20 days, and returns its command.
func (f *testFleet) queueRenewal(deviceID string) string {
	f.t.Helper()
	f.expireCertificateIn(deviceID, 20*24*time.Hour)
	if n, err := f.app.MDM.RenewIdentities(f.ctx, 100); err != nil || n != 1 {
		f.t.Fatalf("renewals queued: %d, %v; want 1", n, err)
	}
	ch, err := f.app.Store.Read().AppleChannels().Get(f.ctx, f.tenant, deviceID)
	if err != nil {
		f.t.Fatal(err)
	}
	return ch.RenewalCommand
}
