package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// testDepartureWinsOverMessages: a device's message whose transaction
// runs while a departure holds the device's channel and commands must not
// undo it. On PostgreSQL (read committed) the message reads the rows as
// they were before the departure and writes after it commits; on SQLite it
// starts after the departure. Either way the channel stays closed and the
// cancelled commands stay cancelled.
func testDepartureWinsOverMessages(t *testing.T, st store.Store) {
	ctx := context.Background()
	a := newTenant(t, st, "")
	d := newDevice(t, st, a.ID, "", "corporate")
	ch := store.AppleChannel{DeviceID: d.ID, TenantID: a.ID, CertFingerprint: []byte("fp-" + d.ID), CertNotAfter: micro(at.Add(time.Hour)),
		EnrolmentID: "enr-" + d.ID, ChannelIndex: []byte("idx-" + d.ID), PushToken: []byte{1}, PushMagic: "magic",
		UnlockToken: []byte("sealed unlock"), Bootstrap: []byte("sealed bootstrap"), CreatedAt: micro(at), UpdatedAt: micro(at)}
	tx(t, st, func(q store.Queries) error { return q.AppleChannels().Create(ctx, ch) })
	cmds := []store.Command{
		{ID: store.NewID(), TenantID: a.ID, DeviceID: d.ID, RequestType: "DeviceLock", Payload: []byte("sealed pin"), State: store.CommandQueued, CreatedAt: micro(at)},
		{ID: store.NewID(), TenantID: a.ID, DeviceID: d.ID, RequestType: "DeviceInformation", Payload: []byte("x"), State: store.CommandQueued, CreatedAt: micro(at)},
	}
	tx(t, st, func(q store.Queries) error { return q.Commands().Enqueue(ctx, cmds, 10) })
	sent, err := st.Read().Commands().SendNext(ctx, a.ID, d.ID, "", true, at)
	must(t, err)

	holding, release, departed := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		departed <- st.Tx(ctx, func(q store.Queries) error {
			if err := q.AppleChannels().CheckOut(ctx, a.ID, d.ID, at.Add(time.Minute)); err != nil {
				return err
			}
			_, err := q.Commands().CancelOpen(ctx, a.ID, d.ID, `[{"LocalizedDescription":"left"}]`, at.Add(time.Minute))
			close(holding)
			<-release
			return err
		})
	}()
	<-holding
	// The message: read, then write what the device said. Its writes wait
	// for the departure's locks, which it releases shortly.
	go func() { time.Sleep(300 * time.Millisecond); close(release) }()
	var channelErr, answerErr, nextErr error
	err = st.Tx(ctx, func(q store.Queries) error {
		c, err := q.AppleChannels().Get(ctx, a.ID, d.ID)
		if err != nil {
			return err
		}
		cmd, err := q.Commands().Get(ctx, a.ID, sent.ID)
		if err != nil {
			return err
		}
		// Each write is the first to meet the departure's locks in some
		// interleaving; SendNext first, as its subquery reads a snapshot.
		_, nextErr = q.Commands().SendNext(ctx, a.ID, d.ID, "", true, at.Add(2*time.Minute))
		c.PushToken, c.UnlockToken, c.LastCheckin = []byte{2}, []byte("new unlock"), micro(at.Add(2*time.Minute))
		channelErr = q.AppleChannels().Update(ctx, c)
		cmd.State, cmd.CompletedAt = store.CommandAcknowledged, micro(at.Add(2*time.Minute))
		answerErr = q.Commands().Update(ctx, cmd)
		return nil
	})
	must(t, err)
	must(t, <-departed)
	wantErr(t, channelErr, store.ErrNotFound, "updating a channel closed meanwhile")
	wantErr(t, answerErr, store.ErrNotFound, "answering a command cancelled meanwhile")
	wantErr(t, nextErr, store.ErrNotFound, "sending a command cancelled meanwhile")

	got, err := st.Read().AppleChannels().Get(ctx, a.ID, d.ID)
	must(t, err)
	if !got.CheckedOut || got.PushToken != nil || got.PushMagic != "" || got.UnlockToken != nil || got.Bootstrap != nil {
		t.Fatalf("the departed channel came back: %+v", got)
	}
	for _, c := range cmds {
		stored, err := st.Read().Commands().Get(ctx, a.ID, c.ID)
		must(t, err)
		if stored.State != store.CommandCancelled || len(stored.Payload) != 0 {
			t.Fatalf("a cancelled command was reopened or re-finished: %+v", stored)
		}
	}
	// Closing twice is no error; a closed channel's Update changes nothing.
	tx(t, st, func(q store.Queries) error { return q.AppleChannels().CheckOut(ctx, a.ID, d.ID, at.Add(time.Hour)) })
	err = st.Tx(ctx, func(q store.Queries) error { return q.AppleChannels().Update(ctx, ch) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update of a closed channel: %v", err)
	}
}

// testCancelOneCommand: Cancel finishes a queued or deferred command, with
// its chain and without its payload, and refuses any other state.
func testCancelOneCommand(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	dev := store.NewID()
	var cmds []store.Command
	for _, state := range []string{store.CommandQueued, store.CommandNotNow, store.CommandSent, store.CommandAcknowledged} {
		cmds = append(cmds, store.Command{ID: store.NewID(), TenantID: a.ID, DeviceID: dev, RequestType: "DeviceLock", Payload: []byte("sealed pin"),
			State: state, RequestedBy: "admin:x", CreatedAt: micro(at)})
	}
	tx(t, st, func(q store.Queries) error { return q.Commands().Enqueue(ctx, cmds, 10) })
	cancel := func(tenantID, id string) (store.Command, error) {
		var c store.Command
		err := st.Tx(ctx, func(q store.Queries) error {
			var err error
			c, err = q.Commands().Cancel(ctx, tenantID, id, `[{"LocalizedDescription":"withdrawn"}]`, at.Add(time.Hour))
			return err
		})
		return c, err
	}
	_, err := cancel(b.ID, cmds[0].ID)
	wantErr(t, err, store.ErrNotFound, "cancelling another tenant's command")
	for _, c := range cmds[:2] {
		got, err := cancel(a.ID, c.ID)
		must(t, err)
		stored, _ := st.Read().Commands().Get(ctx, a.ID, c.ID)
		if got.State != store.CommandCancelled || len(got.Payload) != 0 || got.ErrorChain != `[{"LocalizedDescription":"withdrawn"}]` ||
			!got.CompletedAt.Equal(micro(at.Add(time.Hour))) || !reflect.DeepEqual(got, stored) {
			t.Fatalf("cancelled %s command: returned %+v, stored %+v", c.State, got, stored)
		}
	}
	for _, c := range append(cmds[2:], cmds[0]) {
		_, err := cancel(a.ID, c.ID)
		wantErr(t, err, store.ErrNotFound, "cancelling a "+c.State+" or cancelled command")
	}
	if stored, _ := st.Read().Commands().Get(ctx, a.ID, cmds[2].ID); stored.State != store.CommandSent || string(stored.Payload) != "sealed pin" {
		t.Fatalf("a delivered command changed: %+v", stored)
	}

	// A device asking for its next command while an admin cancels the
	// first in line gets the one after it, not nothing.
	other := store.NewID()
	next := []store.Command{
		{ID: store.NewID(), TenantID: a.ID, DeviceID: other, RequestType: "RestartDevice", Payload: []byte("x"), State: store.CommandQueued, CreatedAt: micro(at)},
		{ID: store.NewID(), TenantID: a.ID, DeviceID: other, RequestType: "SecurityInfo", Payload: []byte("y"), State: store.CommandQueued, CreatedAt: micro(at)},
	}
	tx(t, st, func(q store.Queries) error { return q.Commands().Enqueue(ctx, next, 10) })
	holding, release, cancelled := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		cancelled <- st.Tx(ctx, func(q store.Queries) error {
			_, err := q.Commands().Cancel(ctx, a.ID, next[0].ID, `[]`, at)
			close(holding)
			<-release
			return err
		})
	}()
	<-holding
	go func() { time.Sleep(300 * time.Millisecond); close(release) }()
	var sent store.Command
	err = st.Tx(ctx, func(q store.Queries) error {
		var err error
		sent, err = q.Commands().SendNext(ctx, a.ID, other, "", true, at.Add(time.Minute))
		return err
	})
	must(t, <-cancelled)
	if err != nil || sent.ID != next[1].ID {
		t.Fatalf("next command while the first was being cancelled: %+v, %v; want the second", sent, err)
	}
}

// testOpenOfDeparted lists the open channels of devices that left, and
// nothing else.
func testOpenOfDeparted(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	mk := func(state string, checkedOut bool) store.Device {
		d := newDevice(t, st, tn.ID, "", "corporate")
		ch := store.AppleChannel{DeviceID: d.ID, TenantID: tn.ID, CertFingerprint: []byte("fp-" + d.ID), CertNotAfter: micro(at),
			EnrolmentID: "enr-" + d.ID, ChannelIndex: []byte("idx-" + d.ID), CreatedAt: micro(at), UpdatedAt: micro(at)}
		tx(t, st, func(q store.Queries) error {
			if err := q.AppleChannels().Create(ctx, ch); err != nil {
				return err
			}
			if checkedOut {
				if err := q.AppleChannels().CheckOut(ctx, tn.ID, d.ID, at); err != nil {
					return err
				}
			}
			d.State = state
			return q.Devices().Update(ctx, d)
		})
		return d
	}
	mk(store.DeviceEnrolled, false)
	mk(store.DeviceDeprovisioned, true)
	want := map[string]bool{mk(store.DeviceDeprovisioned, false).ID: true, mk(store.DeviceRetired, false).ID: true, mk(store.DeviceWiped, false).ID: true}
	got, err := st.Read().AppleChannels().OpenOfDeparted(ctx, 10)
	must(t, err)
	if len(got) != len(want) {
		t.Fatalf("open channels of departed devices: %d, want %d", len(got), len(want))
	}
	for _, ch := range got {
		if !want[ch.DeviceID] {
			t.Fatalf("listed the channel of device %s, which is managed or closed", ch.DeviceID)
		}
	}
	if got, _ := st.Read().AppleChannels().OpenOfDeparted(ctx, 2); len(got) != 2 {
		t.Fatalf("a limit of 2 listed %d", len(got))
	}
}
