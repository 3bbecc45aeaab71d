package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// testStaleFinish: Steward finishing a command it read without a lock,
// while a node delivers it between the read and the write. Finish (a
// cancellation) keeps the later delivery's counters; FinishDelivery (a
// give-up that holds only while nothing delivered the command) changes
// nothing once it was delivered again, and finishes it, counters as they
// are, while it was not. On PostgreSQL the interleavings are run again
// with the read and the write in one transaction that stays open across
// the delivery's, and with the write waiting on the row lock of a delivery
// not yet committed.
func testStaleFinish(t *testing.T, st store.Store) {
	ctx := context.Background()
	a := newTenant(t, st, "")
	dev := store.NewID()
	first, second, third := micro(at), micro(at.Add(time.Minute)), micro(at.Add(2*time.Minute))
	const chain = `[{"LocalizedDescription":"not sent"}]`
	// queued returns a new command of dev, the oldest open one, sent
	// sentTimes times (once at first, then at second).
	queued := func(sentTimes int) store.Command {
		c := store.Command{ID: store.NewID(), TenantID: a.ID, DeviceID: dev, RequestType: "SecurityInfo", Payload: []byte("p"),
			State: store.CommandQueued, RequestedBy: "admin:x", CreatedAt: micro(at)}
		tx(t, st, func(q store.Queries) error { return q.Commands().Enqueue(ctx, []store.Command{c}, 10) })
		for i := range sentTimes {
			if sent := deliver(t, st, a.ID, dev, []time.Time{first, second}[i]); sent.ID != c.ID || sent.Attempts != i+1 {
				t.Fatalf("delivery %d: %+v", i+1, sent)
			}
		}
		return mustGet(t, st, a.ID, c.ID)
	}
	failed := func(c store.Command) store.Command {
		c.State, c.CompletedAt, c.ErrorChain = store.CommandError, third, chain
		return c
	}
	// redelivered fails unless c is stored open, as its second delivery
	// left it.
	redelivered := func(what string, c store.Command) {
		t.Helper()
		got := mustGet(t, st, a.ID, c.ID)
		if got.State != store.CommandSent || got.Attempts != 2 || got.Unanswered != 1 || !got.SentAt.Equal(second) ||
			got.ErrorChain != "" || !got.CompletedAt.IsZero() || string(got.Payload) != "p" {
			t.Fatalf("%s: %+v, want it sent twice, once unanswered, last at %v, its payload kept", what, got, second)
		}
	}
	// settle finishes c, so that the next command is the queue's oldest.
	settle := func(c store.Command) {
		c.State, c.CompletedAt = store.CommandAcknowledged, third
		tx(t, st, func(q store.Queries) error { return q.Commands().Finish(ctx, c) })
	}
	finishDelivery := func(c store.Command, delivery int) error {
		return st.Tx(ctx, func(q store.Queries) error { return q.Commands().FinishDelivery(ctx, c, delivery) })
	}

	// Never delivered: finished at delivery 0, never sent, no payload.
	c := queued(0)
	must(t, finishDelivery(failed(c), 0))
	if got := mustGet(t, st, a.ID, c.ID); got.State != store.CommandError || got.ErrorChain != chain || !got.CompletedAt.Equal(third) ||
		got.Attempts != 0 || !got.SentAt.IsZero() || len(got.Payload) != 0 {
		t.Fatalf("a command finished at its delivery: %+v, want failed, never sent, without its payload", got)
	}
	wantErr(t, finishDelivery(failed(c), 0), store.ErrNotFound, "finishing a finished command at its delivery")
	c.State = store.CommandQueued
	wantErr(t, finishDelivery(c, 0), store.ErrConflict, "finishing at its delivery as queued")

	// Read at the first delivery, finished after the second: nothing
	// changes. At the second it finishes, counters as they are.
	c = queued(1)
	read, err := st.Read().Commands().Get(ctx, a.ID, c.ID)
	must(t, err)
	deliver(t, st, a.ID, dev, second)
	wantErr(t, finishDelivery(failed(read), read.Attempts), store.ErrNotFound, "finishing at the first delivery after the second")
	redelivered("after a finish at a stale delivery", c)
	must(t, finishDelivery(failed(read), 2))
	if got := mustGet(t, st, a.ID, c.ID); got.State != store.CommandError || got.Attempts != 2 || got.Unanswered != 1 ||
		!got.SentAt.Equal(second) || !got.CompletedAt.Equal(third) || len(got.Payload) != 0 {
		t.Fatalf("a command finished at its current delivery: %+v, want failed with that delivery's counters, no payload", got)
	}

	// A cancellation read before a delivery and written after it (Finish)
	// keeps the delivery counted.
	c = queued(1)
	read, err = st.Read().Commands().Get(ctx, a.ID, c.ID)
	must(t, err)
	deliver(t, st, a.ID, dev, second)
	read.State, read.CompletedAt, read.ErrorChain = store.CommandCancelled, third, chain
	tx(t, st, func(q store.Queries) error { return q.Commands().Finish(ctx, read) })
	if got := mustGet(t, st, a.ID, c.ID); got.State != store.CommandCancelled || got.Attempts != 2 || got.Unanswered != 1 ||
		!got.SentAt.Equal(second) || len(got.Payload) != 0 {
		t.Fatalf("a cancellation read before the second delivery: %+v, want cancelled with that delivery's counters", got)
	}
	if st.Engine() != "postgres" {
		return // SQLite's single writer runs one transaction's read and write with no other between them
	}

	// One transaction reads, a delivery commits, the same transaction
	// writes.
	for _, cancel := range []bool{false, true} {
		c = queued(1)
		var finishErr error
		tx(t, st, func(q store.Queries) error {
			read, err := q.Commands().Get(ctx, a.ID, c.ID)
			if err != nil {
				return err
			}
			deliver(t, st, a.ID, dev, second) // on another connection
			if cancel {
				read.State, read.CompletedAt, read.ErrorChain = store.CommandCancelled, third, chain
				finishErr = q.Commands().Finish(ctx, read)
			} else {
				finishErr = q.Commands().FinishDelivery(ctx, failed(read), read.Attempts)
			}
			return nil
		})
		got := mustGet(t, st, a.ID, c.ID)
		if cancel {
			must(t, finishErr)
			if got.State != store.CommandCancelled || got.Attempts != 2 || !got.SentAt.Equal(second) {
				t.Fatalf("a cancellation whose transaction read the first delivery: %+v, want cancelled with the second's counters", got)
			}
			continue
		}
		wantErr(t, finishErr, store.ErrNotFound, "a finish at the first delivery, whose transaction overlapped the second's commit")
		redelivered("after a stale finish in an overlapping transaction", c)
		settle(got)
	}

	// The delivery holds the row, uncommitted, when the finish writes: the
	// finish waits, then finds the second delivery.
	c = queued(1)
	read, err = st.Read().Commands().Get(ctx, a.ID, c.ID)
	must(t, err)
	delivered, release, deliveryDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		deliveryDone <- st.Tx(ctx, func(q store.Queries) error {
			_, err := q.Commands().SendNext(ctx, a.ID, dev, "", true, second)
			close(delivered)
			<-release
			return err
		})
	}()
	<-delivered
	finishDone := make(chan error, 1)
	go func() { finishDone <- finishDelivery(failed(read), read.Attempts) }()
	AwaitLockWaiters(t, st, 1)
	close(release)
	must(t, <-deliveryDone)
	wantErr(t, <-finishDone, store.ErrNotFound, "a finish at the first delivery that waited for the second's commit")
	redelivered("after a finish that waited for the delivery", c)
}
