package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// testStaleNotNow: a NotNow read at one delivery of a command and recorded
// after an Idle on the same channel delivered the command again changes
// nothing: the command stays sent, with the later delivery's counters. The
// two are interleaved step by step: the NotNow reads, the Idle delivers and
// commits, the NotNow writes. On PostgreSQL that is also run with the
// NotNow's read and write in one transaction that stays open across the
// Idle's (read committed lets the two overlap so), and with the NotNow's
// write waiting on the row lock of an Idle not yet committed. An answer that
// finishes the command (Finish) keeps the later delivery's counters too.
func testStaleNotNow(t *testing.T, st store.Store) {
	ctx := context.Background()
	a := newTenant(t, st, "")
	dev := store.NewID()
	first, second, third := micro(at), micro(at.Add(time.Minute)), micro(at.Add(2*time.Minute))
	// queued returns a new command of dev, sent once at first.
	queued := func() store.Command {
		c := store.Command{ID: store.NewID(), TenantID: a.ID, DeviceID: dev, RequestType: "SecurityInfo", Payload: []byte("p"),
			State: store.CommandQueued, RequestedBy: "admin:x", CreatedAt: micro(at)}
		tx(t, st, func(q store.Queries) error { return q.Commands().Enqueue(ctx, []store.Command{c}, 10) })
		sent := deliver(t, st, a.ID, dev, first)
		if sent.ID != c.ID || sent.Attempts != 1 {
			t.Fatalf("first delivery: %+v", sent)
		}
		return sent
	}
	// settle finishes c, so that the next command is the queue's oldest.
	settle := func(c store.Command) {
		c.State, c.CompletedAt = store.CommandAcknowledged, third
		tx(t, st, func(q store.Queries) error { return q.Commands().Update(ctx, c) })
	}
	// unchanged fails unless c is stored as the Idle's delivery left it.
	unchanged := func(what string, c store.Command) {
		t.Helper()
		got, err := st.Read().Commands().Get(ctx, a.ID, c.ID)
		must(t, err)
		if got.State != store.CommandSent || got.Attempts != 2 || got.Unanswered != 1 || !got.SentAt.Equal(second) {
			t.Fatalf("%s: %+v, want it sent twice, once unanswered, last at %v", what, got, second)
		}
	}

	// The steps as separate transactions, on both engines.
	c := queued()
	read, err := st.Read().Commands().Get(ctx, a.ID, c.ID) // the NotNow reads
	must(t, err)
	if again := deliver(t, st, a.ID, dev, second); again.ID != c.ID || again.Attempts != 2 || again.Unanswered != 1 { // the Idle
		t.Fatalf("second delivery: %+v", again)
	}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Commands().PutOff(ctx, a.ID, read.ID, read.Attempts) }),
		store.ErrNotFound, "a NotNow to the first delivery, recorded after the second")
	unchanged("after a stale NotNow", c)
	// A NotNow to the delivery the command is at is recorded, and only once.
	tx(t, st, func(q store.Queries) error { return q.Commands().PutOff(ctx, a.ID, c.ID, 2) })
	got, err := st.Read().Commands().Get(ctx, a.ID, c.ID)
	must(t, err)
	if got.State != store.CommandNotNow || got.Attempts != 2 || got.Unanswered != 1 || !got.SentAt.Equal(second) {
		t.Fatalf("after a NotNow to the current delivery: %+v, want notnow with the delivery's counters", got)
	}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Commands().PutOff(ctx, a.ID, c.ID, 2) }),
		store.ErrNotFound, "a second NotNow to the same delivery")
	settle(got)

	// An answer to the first delivery, recorded after the second, finishes
	// the command and leaves the counters of the second.
	c = queued()
	read, err = st.Read().Commands().Get(ctx, a.ID, c.ID)
	must(t, err)
	deliver(t, st, a.ID, dev, second)
	read.State, read.CompletedAt = store.CommandAcknowledged, third
	tx(t, st, func(q store.Queries) error { return q.Commands().Finish(ctx, read) })
	if got := mustGet(t, st, a.ID, c.ID); got.State != store.CommandAcknowledged || got.Attempts != 2 || got.Unanswered != 1 ||
		!got.SentAt.Equal(second) || !got.CompletedAt.Equal(third) || len(got.Payload) != 0 {
		t.Fatalf("after an answer to the first delivery: %+v, want acknowledged, the second delivery's counters, no payload", got)
	}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Commands().Finish(ctx, read) }), store.ErrNotFound, "a second answer")
	read.State = store.CommandSent
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Commands().Finish(ctx, read) }), store.ErrConflict, "finishing as sent")
	if st.Engine() != "postgres" {
		return // SQLite's single writer runs one transaction's read and write with no other between them
	}

	// One transaction reads, the Idle delivers and commits, the same
	// transaction writes.
	c = queued()
	var putOff error
	tx(t, st, func(q store.Queries) error {
		read, err := q.Commands().Get(ctx, a.ID, c.ID)
		if err != nil {
			return err
		}
		deliver(t, st, a.ID, dev, second) // on another connection
		putOff = q.Commands().PutOff(ctx, a.ID, read.ID, read.Attempts)
		return nil
	})
	wantErr(t, putOff, store.ErrNotFound, "a NotNow whose transaction read the first delivery, the second committed meanwhile")
	unchanged("after a stale NotNow in an overlapping transaction", c)
	settle(mustGet(t, st, a.ID, c.ID))

	// The Idle has delivered and holds the row, uncommitted, when the
	// NotNow writes: the NotNow waits, then finds the second delivery.
	c = queued()
	read, err = st.Read().Commands().Get(ctx, a.ID, c.ID)
	must(t, err)
	delivered, release, idleDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		idleDone <- st.Tx(ctx, func(q store.Queries) error {
			_, err := q.Commands().SendNext(ctx, a.ID, dev, "", true, second)
			close(delivered)
			<-release
			return err
		})
	}()
	<-delivered
	notNowDone := make(chan error, 1)
	go func() {
		notNowDone <- st.Tx(ctx, func(q store.Queries) error { return q.Commands().PutOff(ctx, a.ID, read.ID, read.Attempts) })
	}()
	AwaitLockWaiters(t, st, 1)
	close(release)
	must(t, <-idleDone)
	wantErr(t, <-notNowDone, store.ErrNotFound, "a NotNow that waited for the second delivery's commit")
	unchanged("after a NotNow that waited for the Idle", c)
}

// deliver runs an Idle's SendNext on dev's device channel at when, in a
// transaction of its own, and returns the command delivered.
func deliver(t *testing.T, st store.Store, tenantID, dev string, when time.Time) store.Command {
	t.Helper()
	var c store.Command
	tx(t, st, func(q store.Queries) error {
		var err error
		c, err = q.Commands().SendNext(context.Background(), tenantID, dev, "", true, when)
		return err
	})
	return c
}

func mustGet(t *testing.T, st store.Store, tenantID, id string) store.Command {
	t.Helper()
	c, err := st.Read().Commands().Get(context.Background(), tenantID, id)
	must(t, err)
	return c
}
