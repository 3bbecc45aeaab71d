package mdm_test

import (
	"bytes"
	"maps"
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// wipeableDevice is Erika's personal device, enrolled with her permission
// for a full wipe under a policy that allows it, its initial inventory
// answered.
func wipeableDevice(t *testing.T, st store.Store) (f *fixture, d *sim.Device, dev store.Device, erika string) {
	t.Helper()
	f = newFixture(t, st)
	ts := f.serve()
	f.publish(privacy.Personal)
	f.allowFullWipe(true)
	erika = f.subject("erika@acme.test")
	d, err := sim.New(ts.Client(), false)
	if err != nil {
		t.Fatal(err)
	}
	d.Personal = true
	if err := d.Enrol(f.ctx, f.inviteByMail(privacy.Personal, erika), true); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	ch, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(d.Certificate()))
	if err != nil {
		t.Fatal(err)
	}
	if dev, err = f.st.Read().Devices().Get(f.ctx, f.tenant, ch.DeviceID); err != nil {
		t.Fatal(err)
	}
	return f, d, dev, erika
}

// acceptAgain records that Erika accepted the current notice again in the
// employee portal, answering the full-wipe question with wipe.
func (f *fixture) acceptAgain(erika string, wipe bool) {
	f.t.Helper()
	cs, err := f.priv.Consents(f.ctx, f.tenant, erika)
	if err != nil || len(cs.Consents) == 0 {
		f.t.Fatalf("consents: %+v, %v", cs, err)
	}
	if _, err := f.priv.RecordConsent(f.ctx, f.tenant, erika, privacy.ConsentInput{Ownership: string(privacy.Personal),
		NoticeVersion: cs.Consents[0].NoticeVersion, Language: "en", Method: "portal", AllowFullWipe: wipe},
		iam.Actor{Type: store.ActorSubject, ID: erika}); err != nil {
		f.t.Fatal(err)
	}
}

// TestFullWipeFollowsTheConsentInForce: an employee who allowed a full
// wipe at enrolment and then accepted the notice again without it has
// taken it back: a full wipe of their device is refused.
func TestFullWipeFollowsTheConsentInForce(t *testing.T) {
	f, _, dev, erika := wipeableDevice(t, storetest.OpenSQLite(t))
	f.acceptAgain(erika, false)
	cmds, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.EraseDevice{}, "lost device, employee asked", admin)
	if !apperr.IsKind(err, apperr.KindForbidden) {
		t.Fatalf("EraseDevice after the consent in force took the wipe back: %d queued, %v; want it refused", len(cmds), err)
	}
	if e := apperr.As(err); e.Message != "the employee has not allowed a full wipe of this personal device; retire it instead" {
		t.Errorf("refusal: %q", e.Message)
	}
}

// TestQueuedFullWipeIsCheckedAtDelivery: a full wipe queued for a
// personal device that is offline is sent only if it is still allowed when
// the device asks for its next command. Once the policy or the employee's
// consent no longer allows it, it fails without its payload, is audited,
// and the device gets the command after it.
func TestQueuedFullWipeIsCheckedAtDelivery(t *testing.T) {
	cases := []struct {
		name   string
		change func(f *fixture, erika string)
		sent   bool
	}{
		{"policy forbids full wipes", func(f *fixture, _ string) { f.allowFullWipe(false) }, false},
		{"consent taken back", func(f *fixture, erika string) { f.acceptAgain(erika, false) }, false},
		{"consent kept", func(f *fixture, erika string) { f.acceptAgain(erika, true) }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
				f, d, dev, erika := wipeableDevice(t, st)
				wipe, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.EraseDevice{}, "lost device, employee asked", admin)
				if err != nil {
					t.Fatal(err)
				}
				info, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.SecurityInfo{}, "", admin)
				if err != nil {
					t.Fatal(err)
				}
				tc.change(f, erika)

				sent := command(t, d, map[string]any{"Status": "Idle"})
				if tc.sent {
					if sent.CommandUUID != wipe[0].ID {
						t.Fatalf("the device got %s, want the full wipe still allowed", sent.RequestType)
					}
					return
				}
				if sent.CommandUUID != info[0].ID {
					t.Fatalf("the device got %s, want the command after the withheld wipe", sent.RequestType)
				}
				got, err := f.st.Read().Commands().Get(f.ctx, f.tenant, wipe[0].ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.State != store.CommandError || len(got.Payload) != 0 || got.Attempts != 0 || !got.SentAt.IsZero() ||
					mdm.ErrorSummary(got.ErrorChain) != "full wipe no longer allowed: policy or the employee's consent changed" {
					t.Errorf("withheld wipe: %+v (%q)", got, mdm.ErrorSummary(got.ErrorChain))
				}
				entries, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.command.withhold"})
				if err != nil || len(entries) != 1 || entries[0].TargetID != dev.ID || entries[0].ActorType != store.ActorSystem {
					t.Fatalf("audit of the withheld wipe: %+v, %v", entries, err)
				}
			})
		})
	}
}

// TestFullWipeAnswerBelongsToItsDevice: the employee's answer on a full
// wipe is per device. Taken back for one, it stays taken back when they
// allow it for another device, and nobody else can give it back: not an
// admin recording a consent for them, not a consent from the portal.
func TestFullWipeAnswerBelongsToItsDevice(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f, _, first, erika := wipeableDevice(t, st)
		f.acceptAgain(erika, false)

		second, err := sim.New(f.serve().Client(), false)
		if err != nil {
			t.Fatal(err)
		}
		second.Personal = true
		if err := second.Enrol(f.ctx, f.inviteByMail(privacy.Personal, erika), true); err != nil {
			t.Fatal(err)
		}
		ch, err := f.st.Read().AppleChannels().GetByCert(f.ctx, mdm.Fingerprint(second.Certificate()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{ch.DeviceID}, mdmproto.EraseDevice{}, "lost device, employee asked", admin); err != nil {
			t.Fatalf("a full wipe of the device she allowed it for: %v", err)
		}
		eraseFirst := func(when string) {
			t.Helper()
			_, err := f.svc.Enqueue(f.ctx, f.tenant, []string{first.ID}, mdmproto.EraseDevice{}, "lost device, employee asked", admin)
			if !apperr.IsKind(err, apperr.KindForbidden) {
				t.Fatalf("%s: a full wipe of the device she took it back for: %v; want it refused", when, err)
			}
		}
		eraseFirst("after allowing it for another device")

		cs, err := f.priv.Consents(f.ctx, f.tenant, erika)
		if err != nil {
			t.Fatal(err)
		}
		version := cs.Consents[0].NoticeVersion
		_, err = f.priv.RecordConsent(f.ctx, f.tenant, erika, privacy.ConsentInput{Ownership: string(privacy.Personal),
			NoticeVersion: version, Language: "en", Method: "admin-recorded", AllowFullWipe: true}, admin)
		if !apperr.IsKind(err, apperr.KindInvalid) {
			t.Fatalf("an admin recording a full-wipe permission for her: %v; want it refused", err)
		}
		f.acceptAgain(erika, true)
		eraseFirst("after a portal consent with the permission")
	})
}

// TestFullWipeTakenBackWhileTheDeviceAsks: on PostgreSQL, an employee
// taking the full-wipe permission back on one node while their device asks
// for its next command on another is waited for: the queued wipe is
// withheld, not sent on the permission as it was before the take-back
// committed.
func TestFullWipeTakenBackWhileTheDeviceAsks(t *testing.T) {
	st := storetest.OpenPostgres(t)
	f, d, dev, erika := wipeableDevice(t, st)
	wipe, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.EraseDevice{}, "lost device, employee asked", admin)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := f.priv.Consents(f.ctx, f.tenant, erika)
	if err != nil || len(cs.Consents) == 0 {
		t.Fatalf("consents: %+v, %v", cs, err)
	}
	wipeAskedWhileHeld(t, f, d, wipe[0].ID, func(q store.Queries) error {
		_, err := f.priv.RecordConsentIn(f.ctx, q, f.tenant, erika, privacy.ConsentInput{Ownership: string(privacy.Personal),
			NoticeVersion: cs.Consents[0].NoticeVersion, Language: "en", Method: "portal"}, iam.Actor{Type: store.ActorSubject, ID: erika})
		return err
	})
}

// TestFullWipeForbiddenWhileTheDeviceAsks: the same for a policy that stops
// allowing full wipes of personal devices, saved on another node while the
// device asks (PostgreSQL only).
func TestFullWipeForbiddenWhileTheDeviceAsks(t *testing.T) {
	st := storetest.OpenPostgres(t)
	f, d, dev, _ := wipeableDevice(t, st)
	wipe, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.EraseDevice{}, "lost device, employee asked", admin)
	if err != nil {
		t.Fatal(err)
	}
	wipeAskedWhileHeld(t, f, d, wipe[0].ID, func(q store.Queries) error {
		settings, version, err := privacy.LoadSettings(f.ctx, q, f.tenant)
		if err != nil {
			return err
		}
		settings.Policy = maps.Clone(settings.Policy)
		personal := settings.Policy[privacy.Personal]
		personal.FullWipe = false
		settings.Policy[privacy.Personal] = personal
		return privacy.SaveSettings(f.ctx, q, f.tenant, settings, version, f.now)
	})
}

// wipeAskedWhileHeld has device d ask for its commands while a transaction
// running change holds what it wrote, then checks that full wipe wipeID,
// queued before, was withheld rather than sent.
func wipeAskedWhileHeld(t *testing.T, f *fixture, d *sim.Device, wipeID string, change func(q store.Queries) error) {
	t.Helper()
	release := f.hold(change)
	type answer struct {
		body []byte
		err  error
	}
	asked := make(chan answer, 1)
	go func() {
		out, err := d.Send(f.ctx, map[string]any{"Status": "Idle"})
		asked <- answer{out, err}
	}()
	storetest.AwaitLockWaiters(t, f.st, 1) // the Idle waits for the change
	release()
	got := <-asked
	if got.err != nil {
		t.Fatal(got.err)
	}
	if bytes.Contains(got.body, []byte(wipeID)) {
		t.Fatal("the device was sent a full wipe no longer allowed when it asked")
	}
	withheld, err := f.st.Read().Commands().Get(f.ctx, f.tenant, wipeID)
	if err != nil || withheld.State != store.CommandError || !withheld.SentAt.IsZero() {
		t.Errorf("the wipe: %s, sent at %v (%v); want it withheld", withheld.State, withheld.SentAt, err)
	}
}
