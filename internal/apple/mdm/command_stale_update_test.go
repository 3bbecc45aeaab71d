package mdm_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// Two writes of Steward's own that finish a command it read without a lock
// (Connect never takes one either): a node with the key delivers the
// command between the read and the write. On PostgreSQL only: SQLite's
// single writer runs the read and the write with no other transaction
// between them.

// deliverOnAnotherNode claims the next command of device deviceID's channel
// in a transaction of its own on st, as a node that can open its payload
// does for the device's Idle, and returns it.
func deliverOnAnotherNode(t *testing.T, f *fixture, st store.Store, deviceID string) store.Command {
	t.Helper()
	var c store.Command
	if err := st.Tx(f.ctx, func(q store.Queries) error {
		var err error
		c, err = q.Commands().SendNext(f.ctx, f.tenant, deviceID, "", true, f.now)
		return err
	}); err != nil {
		t.Errorf("the other node's delivery: %v", err)
	}
	return c
}

// racingNode serves a fixture over rs, a racingStore on PostgreSQL (raw),
// with one corporate device enrolled and its first commands answered.
func racingNode(t *testing.T) (raw store.Store, rs *racingStore, f *fixture, ts *httptest.Server, d *sim.Device, dev store.Device) {
	t.Helper()
	raw = storetest.OpenPostgres(t)
	rs = &racingStore{Store: raw}
	f = newFixture(t, rs)
	f.publish(privacy.Corporate)
	ts = f.serve()
	f.svc.SetClock(func() time.Time { return f.now })
	d, dev = f.polled(ts, privacy.Corporate, "")
	return raw, rs, f, ts, d, dev
}

// TestUnopenedGiveUpLeavesADeliveryMadeMeanwhile: a node that could not
// open a command's payload for an hour gives it up; another node, which
// can, delivers it after the give-up read the command and before it wrote.
// The command stays as that delivery left it, sent and awaiting the
// device, and the device's answer is kept (written back as failed, it was
// dropped as a repeated answer, the device having carried it out).
func TestUnopenedGiveUpLeavesADeliveryMadeMeanwhile(t *testing.T) {
	raw, rs, f, ts, d, dev := racingNode(t)
	rotated := otherMasterKeyNode(t, f, ts.URL)
	cmds, err := rotated.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ProfileList{}, "", admin)
	if err != nil || len(cmds) != 1 {
		t.Fatalf("queued %d: %v", len(cmds), err)
	}
	id := cmds[0].ID
	var status *sim.StatusError
	if _, err := d.Poll(f.ctx); !errors.As(err, &status) || status.Status != http.StatusInternalServerError {
		t.Fatalf("a check-in whose command this node cannot open: %v, want a 500", err)
	}
	f.now = f.now.Add(61 * time.Minute)
	var delivered store.Command
	rs.afterGet(id, func() { delivered = deliverOnAnotherNode(t, f, raw, dev.ID) })
	if _, err := d.Poll(f.ctx); err == nil {
		t.Fatal("the check-in whose command this node cannot open was answered")
	}
	if delivered.ID != id || delivered.Attempts != 1 {
		t.Fatalf("the other node delivered %+v, want %s once: the give-up did not read the command", delivered, id)
	}
	got, err := raw.Read().Commands().Get(f.ctx, f.tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.CommandSent || got.Attempts != 1 || !got.SentAt.Equal(delivered.SentAt) || got.ErrorChain != "" {
		t.Fatalf("the command the other node delivered meanwhile is %s after %d deliveries, sent %v, chain %s; want sent once, at %v",
			got.State, got.Attempts, got.SentAt, got.ErrorChain, delivered.SentAt)
	}
	// The device carried it out; its answer, to this node, is kept.
	if _, err := d.Send(f.ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": id, "RequestType": "ProfileList", "ProfileList": []any{}}); err != nil {
		t.Fatal(err)
	}
	if got, err = raw.Read().Commands().Get(f.ctx, f.tenant, id); err != nil {
		t.Fatal(err)
	}
	if got.State != store.CommandAcknowledged || got.Attempts != 1 {
		t.Fatalf("after the device's answer the command is %s after %d deliveries (%s), want acknowledged", got.State, got.Attempts, got.ErrorChain)
	}
}

// TestUnopenedGiveUpStillFailsAnUndeliveredCommand: the same give-up, with
// nothing delivered meanwhile, still fails the command as Steward's error.
func TestUnopenedGiveUpStillFailsAnUndeliveredCommand(t *testing.T) {
	f := newFixture(t, storetest.OpenPostgres(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	f.svc.SetClock(func() time.Time { return f.now })
	d, dev := f.polled(ts, privacy.Corporate, "")
	cmds, err := otherMasterKeyNode(t, f, ts.URL).Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ProfileList{}, "", admin)
	if err != nil || len(cmds) != 1 {
		t.Fatalf("queued %d: %v", len(cmds), err)
	}
	_, _ = d.Poll(f.ctx)
	f.now = f.now.Add(61 * time.Minute)
	_, _ = d.Poll(f.ctx)
	got, err := f.st.Read().Commands().Get(f.ctx, f.tenant, cmds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.CommandError || got.Attempts != 0 || !strings.Contains(got.ErrorChain, "Steward could not open") || len(got.Payload) != 0 {
		t.Fatalf("the command given up is %s after %d deliveries, chain %s, payload %d bytes; want failed as Steward's error, never sent, no payload",
			got.State, got.Attempts, got.ErrorChain, len(got.Payload))
	}
}

// TestSupersededRenewalKeepsADeliveryMadeMeanwhile: a renewal whose
// challenge expired is cancelled when the next is queued; another node
// delivers it after the renewal pass read it and before it wrote. The
// cancelled command keeps that delivery's counters: the device did receive
// it.
func TestSupersededRenewalKeepsADeliveryMadeMeanwhile(t *testing.T) {
	raw, rs, f, _, _, dev := racingNode(t)
	ch, err := raw.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.now = ch.CertNotAfter.Add(-20 * 24 * time.Hour)
	if n, err := f.svc.RenewIdentities(f.ctx, 10); err != nil || n != 1 {
		t.Fatalf("renewals queued %d: %v", n, err)
	}
	if ch, err = raw.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID); err != nil || ch.RenewalCommand == "" {
		t.Fatalf("the first renewal: %+v, %v", ch, err)
	}
	first := ch.RenewalCommand
	f.now = f.now.Add(8 * 24 * time.Hour) // its challenge expired unused
	var delivered store.Command
	rs.afterGet(first, func() { delivered = deliverOnAnotherNode(t, f, raw, dev.ID) })
	if n, err := f.svc.RenewIdentities(f.ctx, 10); err != nil || n != 1 {
		t.Fatalf("renewals queued again %d: %v", n, err)
	}
	if delivered.ID != first || delivered.Attempts != 1 {
		t.Fatalf("the other node delivered %+v, want the first renewal %s once: the pass did not read it", delivered, first)
	}
	got, err := raw.Read().Commands().Get(f.ctx, f.tenant, first)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.CommandCancelled || got.Attempts != 1 || !got.SentAt.Equal(delivered.SentAt) || len(got.Payload) != 0 ||
		!strings.Contains(got.ErrorChain, "replaced by a newer identity renewal") {
		t.Fatalf("the superseded renewal is %s after %d deliveries, sent %v, chain %s, payload %d bytes; want cancelled as superseded, sent once at %v, no payload",
			got.State, got.Attempts, got.SentAt, got.ErrorChain, len(got.Payload), delivered.SentAt)
	}
	if ch, err = raw.Read().AppleChannels().Get(f.ctx, f.tenant, dev.ID); err != nil || ch.RenewalCommand == first || ch.RenewalCommand == "" {
		t.Fatalf("the channel's renewal after the second pass: %q, %v; want a new one", ch.RenewalCommand, err)
	}
}
