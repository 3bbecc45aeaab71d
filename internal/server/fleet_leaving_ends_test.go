package server

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/iam"
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
	if err := f.app.Store.Tx(f.ctx, func(q store.Queries) error {
		ch, err := q.AppleChannels().Get(f.ctx, f.tenant, deviceID)
		if err != nil {
			return err
		}
		ch.CertNotAfter = time.Now().Add(in)
		return q.AppleChannels().Update(f.ctx, ch)
	}); err != nil {
		f.t.Fatal(err)
	}
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
			f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Current OS",
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
