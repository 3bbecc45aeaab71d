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
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// leavingPhone enrols a personal phone and withdraws its employee's
// consent: the phone is leaving, its removal queued.
func (f *testFleet) leavingPhone() (*sim.Device, string) {
	f.t.Helper()
	return f.leavingPhoneAfter(nil)
}

// leavingPhoneAfter is leavingPhone running enrolled (when not nil) on the
// enrolled phone before the withdrawal.
func (f *testFleet) leavingPhoneAfter(enrolled func(phoneID string)) (*sim.Device, string) {
	f.t.Helper()
	erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
	if err != nil {
		f.t.Fatal(err)
	}
	phone, phoneID := f.enrol("personal", erika.ID, "", nil)
	if enrolled != nil {
		enrolled(phoneID)
	}
	cs, err := f.app.Privacy.Consents(f.ctx, f.tenant, erika.ID)
	if err != nil || len(cs.Consents) == 0 {
		f.t.Fatalf("consents: %+v, %v", cs, err)
	}
	if _, err := f.app.Privacy.WithdrawConsent(f.ctx, f.tenant, erika.ID, cs.Consents[0].ID, iam.Actor{Type: store.ActorSubject, ID: erika.ID}); err != nil {
		f.t.Fatal(err)
	}
	if d := f.device(f.owner, phoneID); d.State != store.DeviceLeaving {
		f.t.Fatalf("after the withdrawal the phone is %q, want leaving", d.State)
	}
	return phone, phoneID
}

// retireActions returns the device's retire actions, newest first.
func (f *testFleet) retireActions(deviceID string) []api.ActionView {
	f.t.Helper()
	var acts api.List[api.ActionView]
	f.must(200, f.owner, "GET", f.path("/devices/"+deviceID+"/actions"), nil, &acts)
	var out []api.ActionView
	for _, a := range acts.Items {
		if a.Action == string(actions.Retire) {
			out = append(out, a)
		}
	}
	return out
}

// retellAt runs the sweep that sends leaving devices their removal again,
// with the actions' clock at the given offset from now, and returns how
// many it told.
func (f *testFleet) retellAt(now time.Time, after time.Duration) int {
	f.t.Helper()
	f.app.Actions.SetClock(func() time.Time { return now.Add(after) })
	n, err := f.app.Actions.RetellLeaving(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// TestLeavingDeviceRefusingItsRemovalIsToldAgain: a leaving phone that
// answers the removal of its management profile with an error is sent it
// again once its back-off is over, not before; acknowledged then, it is
// retired.
func TestLeavingDeviceRefusingItsRemovalIsToldAgain(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		phone, phoneID := f.leavingPhone()
		now := time.Now()

		phone.RefuseRemovals = true
		if n, err := phone.Poll(f.ctx); err != nil || n != 1 {
			t.Fatalf("the phone answered %d commands (%v), want its removal", n, err)
		}
		acts := f.retireActions(phoneID)
		if len(acts) != 1 || acts[0].State != store.ActionFailed || !strings.Contains(acts[0].Error, "sent again") {
			t.Fatalf("after the refusal: %+v, want one failed retire saying it is sent again", acts)
		}
		if n := f.retellAt(now, 0); n != 0 {
			t.Fatalf("the removal was sent again %d times before its back-off", n)
		}
		if n := f.retellAt(now, 2*time.Hour); n != 1 {
			t.Fatalf("the removal was sent again %d times after its back-off, want 1", n)
		}
		if n := f.retellAt(now, 3*time.Hour); n != 0 {
			t.Fatalf("a removal still queued was sent again (%d)", n)
		}

		phone.RefuseRemovals = false
		removal := nextCommand(t, f, phone)
		if removal.Command.RequestType != string(mdmproto.RequestRemoveProfile) {
			t.Fatalf("the leaving phone was sent %+v, want its removal", removal.Command)
		}
		if _, err := phone.Send(f.ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": removal.CommandUUID}); err != nil {
			t.Fatal(err)
		}
		if d := f.device(f.owner, phoneID); d.State != store.DeviceRetired {
			t.Errorf("after it acknowledged the removal sent again: %q, want retired", d.State)
		}
		acts = f.retireActions(phoneID)
		if len(acts) != 2 || acts[0].State != store.ActionDone || acts[0].BatchID != acts[1].BatchID {
			t.Errorf("the retires: %+v, want the second done, in the withdrawal's batch", acts)
		}
		f.assertErased(phoneID)
	})
}

// TestLeavingDeviceAbandonedRemovalIsToldAgain: a removal the leaving phone
// fetches and never answers is abandoned after mdm's bound of deliveries,
// then sent again once its back-off is over.
func TestLeavingDeviceAbandonedRemovalIsToldAgain(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		phone, phoneID := f.leavingPhone()
		now := time.Now()

		first := nextCommand(t, f, phone)
		for range 4 {
			if got := nextCommand(t, f, phone); got.CommandUUID != first.CommandUUID {
				t.Fatalf("an unanswered removal: got %+v, want %s again", got, first.CommandUUID)
			}
		}
		if got := nextCommand(t, f, phone); got.CommandUUID != "" {
			t.Fatalf("after its bound of deliveries the phone was sent %+v, want nothing", got)
		}
		acts := f.retireActions(phoneID)
		if len(acts) != 1 || acts[0].State != store.ActionFailed || !strings.Contains(acts[0].Error, "did not answer") {
			t.Fatalf("the abandoned removal's retire: %+v, want failed", acts)
		}
		if n := f.retellAt(now, 2*time.Hour); n != 1 {
			t.Fatalf("the abandoned removal was sent again %d times, want 1", n)
		}
		again := nextCommand(t, f, phone)
		if again.Command.RequestType != string(mdmproto.RequestRemoveProfile) || again.CommandUUID == first.CommandUUID {
			t.Fatalf("after the back-off the phone was sent %+v, want a new removal", again)
		}
		if d := f.device(f.owner, phoneID); d.State != store.DeviceLeaving {
			t.Errorf("while told again: %q, want leaving", d.State)
		}
	})
}

// TestLeavingDeviceToldAtMostFourTimes: a leaving phone that keeps refusing
// its removal is sent it four times in all; then it stays leaving, its
// last retire failed saying Steward stopped and what is left to do, which
// is audited, and the admin can still deprovision it.
func TestLeavingDeviceToldAtMostFourTimes(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		phone, phoneID := f.leavingPhone()
		phone.RefuseRemovals = true
		now := time.Now()
		for i := range 4 {
			if n, err := phone.Poll(f.ctx); err != nil || n != 1 {
				t.Fatalf("removal %d: the phone answered %d commands (%v)", i+1, n, err)
			}
			told := f.retellAt(now, time.Duration(i+1)*100*time.Hour)
			if want := 1; i == 3 {
				if told != 0 {
					t.Fatalf("a fifth removal was sent")
				}
			} else if told != want {
				t.Fatalf("after removal %d: sent again %d times, want 1", i+1, told)
			}
		}
		if n := f.retellAt(now, 1000*time.Hour); n != 0 {
			t.Fatalf("a removal was sent again after the last attempt (%d)", n)
		}
		if n, err := phone.Poll(f.ctx); err != nil || n != 0 {
			t.Fatalf("after the last attempt the phone answered %d commands (%v), want none", n, err)
		}
		if d := f.device(f.owner, phoneID); d.State != store.DeviceLeaving {
			t.Errorf("after the last attempt: %q, want leaving", d.State)
		}
		acts := f.retireActions(phoneID)
		if len(acts) != 4 {
			t.Fatalf("%d retires, want 4: %+v", len(acts), acts)
		}
		for _, a := range acts {
			if a.State != store.ActionFailed || a.BatchID != acts[0].BatchID {
				t.Errorf("retire %+v, want failed, in one batch", a)
			}
		}
		if !strings.Contains(acts[0].Error, "Steward stopped") || !strings.Contains(acts[0].Error, "deprovision") {
			t.Errorf("the last retire's reason: %q", acts[0].Error)
		}
		entries, err := f.app.Store.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.leave.gave_up"})
		if err != nil || len(entries) != 1 || entries[0].TargetID != phoneID {
			t.Errorf("the audit of the last attempt: %+v, %v", entries, err)
		}

		f.must(200, f.owner, "POST", f.path("/devices/"+phoneID+"/deprovision"), api.ReasonRequest{Reason: "the phone keeps its profile"}, nil)
		if d := f.device(f.owner, phoneID); d.State != store.DeviceDeprovisioned {
			t.Errorf("a leaving device deprovisioned after the last attempt: %q", d.State)
		}
	})
}

// TestLeavingDeviceRenewsItsIdentity: a leaving phone keeps a usable
// channel until it removes its management profile: its SCEP RenewalReq is
// accepted, and its certificate's renewal profile is queued and sent to it
// beside its removal. Its messages with the renewed certificate still bring
// it its removal only.
func TestLeavingDeviceRenewsItsIdentity(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		phone, phoneID := f.leavingPhone()
		channelCert := func() []byte {
			t.Helper()
			ch, err := f.app.Store.Read().AppleChannels().Get(f.ctx, f.tenant, phoneID)
			if err != nil {
				t.Fatal(err)
			}
			return ch.CertFingerprint
		}

		if err := phone.RenewIdentity(f.ctx); err != nil {
			t.Fatalf("the leaving phone's SCEP renewal: %v", err)
		}
		removal := nextCommand(t, f, phone)
		if removal.Command.RequestType != string(mdmproto.RequestRemoveProfile) {
			t.Fatalf("with its renewed certificate the phone was sent %+v, want its removal", removal.Command)
		}
		if !bytes.Equal(channelCert(), mdm.Fingerprint(phone.Certificate())) {
			t.Fatal("the channel did not move to the renewed certificate")
		}

		// Its certificate expires in 20 days: the renewal profile is sent.
		if err := f.app.Store.Tx(f.ctx, func(q store.Queries) error {
			ch, err := q.AppleChannels().Get(f.ctx, f.tenant, phoneID)
			if err != nil {
				return err
			}
			ch.CertNotAfter = time.Now().Add(20 * 24 * time.Hour)
			return q.AppleChannels().Update(f.ctx, ch)
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := f.app.MDM.RenewIdentities(f.ctx, 100); err != nil || n != 1 {
			t.Fatalf("renewals queued for the leaving phone: %d, %v; want 1", n, err)
		}
		before := phone.Certificate()
		phone.RefuseRemovals = true // it answers the removal, then installs its renewal
		if n, err := phone.Poll(f.ctx); err != nil || n != 2 {
			t.Fatalf("the phone answered %d commands (%v), want its removal and its renewal", n, err)
		}
		if phone.Certificate().SerialNumber.Cmp(before.SerialNumber) == 0 || !bytes.Equal(channelCert(), mdm.Fingerprint(phone.Certificate())) {
			t.Fatal("the renewal profile did not renew the leaving phone's identity")
		}
		if d := f.device(f.owner, phoneID); d.State != store.DeviceLeaving {
			t.Errorf("after its renewal: %q, want leaving", d.State)
		}
		f.assertErased(phoneID)
	})
}

// TestLeavingDeviceRefusesOtherActionsAndIsStillToldAgain: an admin's
// retire of a leaving phone is refused at once, alone (409) or in a bulk
// request (refused for the phone only), and waits on no approval; delete
// is still accepted. The refused retire does not hide the removal: the
// phone is still told again after each failure.
func TestLeavingDeviceRefusesOtherActionsAndIsStillToldAgain(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		phone, phoneID := f.leavingPhone()
		_, tabletID := f.enrol("corporate", "", "", nil)
		now := time.Now()

		phone.RefuseRemovals = true
		if n, err := phone.Poll(f.ctx); err != nil || n != 1 {
			t.Fatalf("the phone answered %d commands (%v), want its removal", n, err)
		}
		r := f.do(f.owner, "POST", f.path("/devices/"+phoneID+"/actions"), api.DeviceActionRequest{Action: actions.Retire, Reason: "retire it ourselves"})
		if r.status != 409 || !strings.Contains(string(r.body), "the device is leaving management") {
			t.Fatalf("a retire of the leaving phone: HTTP %d %s, want 409 saying it is leaving", r.status, r.body)
		}
		var bulk actions.Batch
		f.must(201, f.owner, "POST", f.path("/actions"), actions.Request{Action: actions.Retire, Reason: "retire both of them",
			DeviceIDs: []string{phoneID, tabletID}}, &bulk)
		var status api.BatchView
		f.must(200, f.owner, "GET", f.path("/actions/"+bulk.ID), nil, &status)
		if status.States[store.ActionRefused] != 1 || status.States[store.ActionAwaitingApproval] != 1 {
			t.Fatalf("a bulk retire with the leaving phone: %+v, want it refused and the other awaiting approval", status.States)
		}
		for _, a := range status.Actions.Items {
			if a.DeviceID == phoneID && (a.State != store.ActionRefused || !strings.Contains(a.Error, "leaving management")) {
				t.Errorf("the leaving phone's retire in the bulk request: %+v", a)
			}
		}

		if n := f.retellAt(now, 2*time.Hour); n != 1 {
			t.Fatalf("after the refused requests the removal was sent again %d times, want 1", n)
		}
		if n, err := phone.Poll(f.ctx); err != nil || n != 1 {
			t.Fatalf("the phone answered %d commands (%v), want its second removal", n, err)
		}
		if n := f.retellAt(now, 30*time.Hour); n != 1 {
			t.Fatalf("after the second failure the removal was sent again %d times, want 1", n)
		}

		f.must(201, f.owner, "POST", f.path("/devices/"+phoneID+"/actions"), api.DeviceActionRequest{Action: actions.Delete, Reason: "forget the phone"}, nil)
	})
}

// TestLeavingDeviceStopsRenewingOnceToldForTheLastTime: once the fourth
// removal failed and Steward stopped, the leaving phone's identity is no
// longer renewed: its channel lapses with its certificate.
func TestLeavingDeviceStopsRenewingOnceToldForTheLastTime(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		phone, phoneID := f.leavingPhone()
		phone.RefuseRemovals = true
		now := time.Now()
		for i := range 4 {
			if n, err := phone.Poll(f.ctx); err != nil || n != 1 {
				t.Fatalf("removal %d: the phone answered %d commands (%v)", i+1, n, err)
			}
			f.retellAt(now, time.Duration(i+1)*100*time.Hour)
		}
		if entries, err := f.app.Store.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.leave.gave_up"}); err != nil || len(entries) != 1 {
			t.Fatalf("Steward did not give up: %+v, %v", entries, err)
		}

		if err := f.app.Store.Tx(f.ctx, func(q store.Queries) error {
			ch, err := q.AppleChannels().Get(f.ctx, f.tenant, phoneID)
			if err != nil {
				return err
			}
			ch.CertNotAfter = time.Now().Add(20 * 24 * time.Hour)
			return q.AppleChannels().Update(f.ctx, ch)
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := f.app.MDM.RenewIdentities(f.ctx, 100); err != nil || n != 0 {
			t.Fatalf("renewals queued for a phone Steward gave up on: %d, %v; want none", n, err)
		}
		if n, err := phone.Poll(f.ctx); err != nil || n != 0 {
			t.Fatalf("the phone Steward gave up on answered %d commands (%v), want none", n, err)
		}
		if err := phone.RenewIdentity(f.ctx); err == nil {
			t.Error("the phone Steward gave up on renewed its identity by SCEP; want it refused")
		}
	})
}

// TestLeavingDeviceBatchCountsItOnce: the withdrawal's batch names one
// device however many times its removal was sent.
func TestLeavingDeviceBatchCountsItOnce(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		phone, phoneID := f.leavingPhone()
		phone.RefuseRemovals = true
		now := time.Now()
		for i := range 3 {
			if n, err := phone.Poll(f.ctx); err != nil || n != 1 {
				t.Fatalf("removal %d: the phone answered %d commands (%v)", i+1, n, err)
			}
			f.retellAt(now, time.Duration(i+1)*100*time.Hour)
		}
		acts := f.retireActions(phoneID)
		if len(acts) != 4 {
			t.Fatalf("%d retires, want 4", len(acts))
		}
		var status api.BatchView
		f.must(200, f.owner, "GET", f.path("/actions/"+acts[0].BatchID), nil, &status)
		if status.Devices != 1 || status.States[store.ActionFailed] != 3 || status.States[store.ActionQueued] != 1 {
			t.Errorf("the withdrawal's batch: %d devices, %+v; want 1 device, 3 failed and 1 queued", status.Devices, status.States)
		}
	})
}

// TestLeavingDeviceCancelledRemovalIsToldAgain: an admin cancelling the
// leaving phone's removal fails its retire like a refusal: the retire says
// when it is sent again, and it is.
func TestLeavingDeviceCancelledRemovalIsToldAgain(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		_, phoneID := f.leavingPhone()
		now := time.Now()

		acts := f.retireActions(phoneID)
		if len(acts) != 1 || acts[0].CommandID == "" {
			t.Fatalf("the withdrawal's retire: %+v", acts)
		}
		f.must(200, f.owner, "POST", f.path("/devices/"+phoneID+"/commands/"+acts[0].CommandID+"/cancel"), api.CancelCommandRequest{Reason: "not now, the employee is travelling"}, nil)
		acts = f.retireActions(phoneID)
		if len(acts) != 1 || acts[0].State != store.ActionFailed || !strings.Contains(acts[0].Error, "sent again") {
			t.Fatalf("after its removal was cancelled: %+v, want a failed retire saying it is sent again", acts)
		}
		if n := f.retellAt(now, 2*time.Hour); n != 1 {
			t.Fatalf("the cancelled removal was sent again %d times, want 1", n)
		}
	})
}

// TestLeavingDeviceGivenUpAfterItsLastRemovalLosesItsRenewal: when the
// fourth removal fails and Steward stops, the phone's open identity renewal
// is cancelled with it: the phone is sent nothing more, and the renewal's
// payload (a SCEP challenge) goes.
func TestLeavingDeviceGivenUpAfterItsLastRemovalLosesItsRenewal(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		phone, phoneID := f.leavingPhone()
		phone.RefuseRemovals = true
		now := time.Now()
		for i := range 3 {
			if n, err := phone.Poll(f.ctx); err != nil || n != 1 {
				t.Fatalf("removal %d: the phone answered %d commands (%v)", i+1, n, err)
			}
			f.retellAt(now, time.Duration(i+1)*100*time.Hour)
		}
		renewal := f.queueRenewal(phoneID)

		if n, err := phone.Poll(f.ctx); err != nil || n != 1 {
			t.Fatalf("the phone answered %d commands (%v), want its last removal only", n, err)
		}
		if entries, err := f.app.Store.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "device.leave.gave_up"}); err != nil || len(entries) != 1 {
			t.Fatalf("Steward did not give up: %+v, %v", entries, err)
		}
		if c, err := f.app.Store.Read().Commands().Get(f.ctx, f.tenant, renewal); err != nil || c.State != store.CommandCancelled || len(c.Payload) != 0 {
			t.Errorf("the open renewal is %s with %d bytes of payload (%v), want cancelled with none", c.State, len(c.Payload), err)
		}
	})
}
