package mdm_test

import (
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestCancelCommand: an admin withdraws commands the device has not been
// given (queued, or answered "not now"); the device is never offered them
// again. A delivered command cannot be recalled.
func TestCancelCommand(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	d, dev := f.enrolledWith(ts, privacy.Corporate, "", supervised) // restarts need supervision
	if _, err := d.Poll(f.ctx); err != nil {                        // the initial inventory, which reports it
		t.Fatal(err)
	}
	enqueue := func(req mdmproto.Request) store.Command {
		t.Helper()
		cmds, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, req, "", admin)
		if err != nil {
			t.Fatal(err)
		}
		return cmds[0]
	}
	lock := enqueue(mdmproto.DeviceLock{Message: "Lost", PIN: mdmproto.SecretString("123456")})
	restart := enqueue(mdmproto.RestartDevice{})
	info := enqueue(mdmproto.SecurityInfo{})

	sent := command(t, d, map[string]any{"Status": "Idle"})
	if sent.CommandUUID != lock.ID {
		t.Fatalf("the device was sent %s first, want the lock", sent.RequestType)
	}
	// The device defers the lock: "not now" can still be cancelled; the
	// restart, now delivered, cannot.
	if next := command(t, d, map[string]any{"Status": "NotNow", "CommandUUID": lock.ID}); next.CommandUUID != restart.ID {
		t.Fatalf("after NotNow the device got %s, want the restart", next.RequestType)
	}
	got, err := f.svc.Cancel(f.ctx, f.tenant, dev.ID, lock.ID, "the phone was found", admin)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.CommandCancelled || len(got.Payload) != 0 || mdm.ErrorSummary(got.ErrorChain) != "cancelled by an administrator: the phone was found" {
		t.Fatalf("cancelled lock: %+v (%q)", got, mdm.ErrorSummary(got.ErrorChain))
	}
	if _, err := f.svc.Cancel(f.ctx, f.tenant, dev.ID, restart.ID, "", admin); !apperr.IsKind(err, apperr.KindConflict) {
		t.Errorf("cancelling a delivered command: %v, want a conflict", err)
	}
	if _, err := f.svc.Cancel(f.ctx, f.tenant, dev.ID, info.ID, "", admin); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{lock.ID, info.ID} { // twice, or through another device: refused
		if _, err := f.svc.Cancel(f.ctx, f.tenant, dev.ID, id, "", admin); !apperr.IsKind(err, apperr.KindConflict) {
			t.Errorf("cancelling a cancelled command: %v, want a conflict", err)
		}
		if _, err := f.svc.Cancel(f.ctx, f.tenant, "another-device", id, "", admin); !apperr.IsKind(err, apperr.KindNotFound) {
			t.Errorf("cancelling through another device: %v, want not found", err)
		}
	}
	if _, err := f.svc.Cancel(f.ctx, f.tenant, dev.ID, restart.ID, string(make([]byte, 201)), admin); !apperr.IsKind(err, apperr.KindInvalid) {
		t.Errorf("a 201-character reason: %v", err)
	}

	// The device answers the restart, says Idle, and is offered nothing.
	if next, err := d.Send(f.ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": restart.ID}); err != nil || len(next) != 0 {
		t.Fatalf("after the restart the device got %q (%v), want nothing", next, err)
	}
	if next, err := d.Send(f.ctx, map[string]any{"Status": "Idle"}); err != nil || len(next) != 0 {
		t.Fatalf("an Idle after the cancellations got %q (%v), want nothing", next, err)
	}
	entries, err := f.st.Read().Audit().List(f.ctx, f.tenant, store.AuditFilter{Action: "mdm.command.cancel"})
	if err != nil || len(entries) != 2 || entries[0].Reason != "the phone was found" {
		t.Fatalf("audit of the cancellations: %+v, %v", entries, err)
	}
}
