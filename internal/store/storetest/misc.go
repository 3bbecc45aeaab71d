package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

func testSettings(t *testing.T, st store.Store) {
	ctx := context.Background()
	r := st.Read().Settings()
	_, err := r.Get(ctx, "sealed-key")
	wantErr(t, err, store.ErrNotFound, "Get absent")
	tx(t, st, func(q store.Queries) error { return q.Settings().Put(ctx, "sealed-key", []byte{0, 1, 255}) })
	tx(t, st, func(q store.Queries) error { return q.Settings().Put(ctx, "sealed-key", []byte{9, 0}) })
	v, err := r.Get(ctx, "sealed-key")
	must(t, err)
	if !bytes.Equal(v, []byte{9, 0}) {
		t.Fatalf("Get after overwrite = %v", v)
	}
	tx(t, st, func(q store.Queries) error { return q.Settings().Put(ctx, "empty", []byte{}) })
	if v, err := r.Get(ctx, "empty"); err != nil || len(v) != 0 {
		t.Fatalf("Get of an empty value = %v, %v", v, err)
	}
	var first, second bool
	tx(t, st, func(q store.Queries) error {
		var err error
		if first, err = q.Settings().PutIfAbsent(ctx, "once", []byte("a")); err != nil {
			return err
		}
		second, err = q.Settings().PutIfAbsent(ctx, "once", []byte("b"))
		return err
	})
	if v, _ := r.Get(ctx, "once"); !first || second || string(v) != "a" {
		t.Fatalf("PutIfAbsent twice = %v, %v, value %q", first, second, v)
	}
	var stale, fresh bool
	tx(t, st, func(q store.Queries) error {
		var err error
		if stale, err = q.Settings().Swap(ctx, "once", []byte("b"), []byte("c")); err != nil {
			return err
		}
		fresh, err = q.Settings().Swap(ctx, "once", []byte("a"), []byte("d"))
		return err
	})
	if v, _ := r.Get(ctx, "once"); stale || !fresh || string(v) != "d" {
		t.Fatalf("Swap from a stale and the current value = %v, %v, value %q", stale, fresh, v)
	}
	tx(t, st, func(q store.Queries) error { return q.Settings().Delete(ctx, "sealed-key") })
	_, err = r.Get(ctx, "sealed-key")
	wantErr(t, err, store.ErrNotFound, "Get after Delete")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Settings().Delete(ctx, "sealed-key") }),
		store.ErrNotFound, "Delete absent")

	// A prefix deletes only its own keys: not a longer tenant ID's, not
	// keys that match it only under LIKE's wildcards or case folding.
	for _, k := range []string{"ca:t1", "ra:t1:1", "ra:t1:2", "ra:t10:1", "RA:t1:3", "ra_t1:4", "raXt1:5"} {
		tx(t, st, func(q store.Queries) error { return q.Settings().Put(ctx, k, []byte(k)) })
	}
	deletePrefix := func(prefix string) (n int) {
		t.Helper()
		tx(t, st, func(q store.Queries) (err error) {
			n, err = q.Settings().DeletePrefix(ctx, prefix)
			return err
		})
		return n
	}
	if n := deletePrefix("ra:t1:"); n != 2 {
		t.Fatalf("DeletePrefix(ra:t1:) removed %d keys, want 2", n)
	}
	for _, k := range []string{"ra:t1:1", "ra:t1:2"} {
		_, err := r.Get(ctx, k)
		wantErr(t, err, store.ErrNotFound, "Get after DeletePrefix")
	}
	if n := deletePrefix("ra_t1:"); n != 1 {
		t.Fatalf("DeletePrefix(ra_t1:) removed %d keys, want 1", n)
	}
	for _, k := range []string{"ca:t1", "ra:t10:1", "RA:t1:3", "raXt1:5"} {
		if _, err := r.Get(ctx, k); err != nil {
			t.Fatalf("DeletePrefix removed %s: %v", k, err)
		}
	}
	if err := st.Tx(ctx, func(q store.Queries) error { _, err := q.Settings().DeletePrefix(ctx, ""); return err }); err == nil {
		t.Fatal("DeletePrefix with an empty prefix succeeded")
	}

	// ListPrefix pages through its own keys only, in key order.
	for _, k := range []string{"ch:3", "ch:1", "ch:5", "ch:2", "ch:4", "ch2:x", "CH:9", "cx:1"} {
		tx(t, st, func(q store.Queries) error { return q.Settings().Put(ctx, k, []byte("v-"+k)) })
	}
	var walked []string
	for after := ""; ; {
		page, err := r.ListPrefix(ctx, "ch:", after, 2)
		must(t, err)
		if len(page) > 2 {
			t.Fatalf("ListPrefix page of %d exceeds limit 2", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			if string(p.Value) != "v-"+p.Key {
				t.Fatalf("ListPrefix value of %s = %q", p.Key, p.Value)
			}
			walked = append(walked, p.Key)
		}
		after = page[len(page)-1].Key
	}
	if want := []string{"ch:1", "ch:2", "ch:3", "ch:4", "ch:5"}; !slices.Equal(walked, want) {
		t.Fatalf("ListPrefix walked %v, want %v", walked, want)
	}
}

func testPutIfAbsentRace(t *testing.T, st store.Store) {
	ctx := context.Background()
	var winners atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			put := func(q store.Queries) error {
				ok, err := q.Settings().PutIfAbsent(ctx, "bootstrap", []byte(fmt.Sprint(i)))
				if ok {
					winners.Add(1)
				}
				return err
			}
			var err error
			if i%2 == 0 {
				err = st.Tx(ctx, put)
			} else {
				err = put(st.Read())
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if winners.Load() != 1 {
		t.Fatalf("%d racers stored the value, want exactly 1", winners.Load())
	}
}

func testLeases(t *testing.T, st store.Store) {
	ctx := context.Background()
	l := st.Read().Leases()
	try := func(holder string, now time.Time) bool {
		t.Helper()
		ok, err := l.TryAcquire(ctx, "checkpoint", holder, now, time.Minute)
		must(t, err)
		return ok
	}
	if !try("node-a", at) {
		t.Fatal("free lease not acquired")
	}
	if try("node-b", at.Add(30*time.Second)) {
		t.Fatal("held lease taken by another node")
	}
	if !try("node-a", at.Add(50*time.Second)) {
		t.Fatal("holder could not renew")
	}
	if try("node-b", at.Add(100*time.Second)) {
		t.Fatal("renewed lease taken before its new expiry")
	}
	if !try("node-b", at.Add(111*time.Second)) {
		t.Fatal("expired lease not taken over")
	}
	must(t, l.Release(ctx, "checkpoint", "node-a")) // not the holder: no effect
	if try("node-a", at.Add(112*time.Second)) {
		t.Fatal("release by a non-holder freed the lease")
	}
	must(t, l.Release(ctx, "checkpoint", "node-b"))
	if !try("node-a", at.Add(113*time.Second)) {
		t.Fatal("released lease not acquirable")
	}
}

// BeforeCommit work runs after the function, in order (including work it
// defers itself), inside the transaction: its error rolls everything back.
func testTxBeforeCommit(t *testing.T, st store.Store) {
	ctx := context.Background()
	var order []string
	step := func(name string) func(store.Queries) error {
		return func(q store.Queries) error {
			order = append(order, name)
			return q.Settings().Put(ctx, "step-"+name, []byte(name))
		}
	}
	tx(t, st, func(q store.Queries) error {
		order = nil
		must(t, q.BeforeCommit(func(q store.Queries) error {
			order = append(order, "first")
			return q.BeforeCommit(step("nested"))
		}))
		must(t, q.BeforeCommit(step("second")))
		order = append(order, "body")
		return nil
	})
	if want := "body first second nested"; fmt.Sprint(order) != "["+want+"]" {
		t.Fatalf("BeforeCommit order = %v, want [%s]", order, want)
	}
	for _, name := range []string{"second", "nested"} {
		if _, err := st.Read().Settings().Get(ctx, "step-"+name); err != nil {
			t.Fatalf("deferred write %s: %v", name, err)
		}
	}

	boom := errors.New("boom")
	err := st.Tx(ctx, func(q store.Queries) error {
		must(t, q.Settings().Put(ctx, "body-write", []byte("x")))
		return q.BeforeCommit(func(store.Queries) error { return boom })
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx with failing deferred work = %v, want boom", err)
	}
	_, err = st.Read().Settings().Get(ctx, "body-write")
	wantErr(t, err, store.ErrNotFound, "a write of a transaction whose deferred work failed")

	// A failed function's deferred work never runs, not even in the next
	// transaction that shares SQLite's batch.
	ran := false
	err = st.Tx(ctx, func(q store.Queries) error {
		must(t, q.BeforeCommit(func(store.Queries) error { ran = true; return nil }))
		return boom
	})
	tx(t, st, func(store.Queries) error { return nil })
	if !errors.Is(err, boom) || ran {
		t.Fatalf("deferred work of a failed transaction: err %v, ran %v", err, ran)
	}
	// Outside a transaction it runs at once.
	ran = false
	must(t, st.Read().BeforeCommit(func(store.Queries) error { ran = true; return nil }))
	if !ran {
		t.Fatal("BeforeCommit outside a transaction did not run")
	}
}

// Gathered work runs once per gathering, at the place of its first call,
// with every item in call order; a call after it ran gathers anew.
func testTxBeforeCommitGathered(t *testing.T, st store.Store) {
	type key struct{}
	var runs [][]any
	gather := func(q store.Queries, item any) error {
		return q.BeforeCommitGathered(key{}, item, func(_ store.Queries, items []any) error {
			runs = append(runs, items)
			return nil
		})
	}
	tx(t, st, func(q store.Queries) error {
		runs = nil
		must(t, gather(q, 1))
		must(t, q.BeforeCommit(func(q store.Queries) error { return gather(q, 3) }))
		must(t, gather(q, 2))
		return nil
	})
	if got := fmt.Sprint(runs); got != "[[1 2] [3]]" {
		t.Fatalf("gathered runs = %s, want [[1 2] [3]]", got)
	}
	// A failed transaction's gathering does not reach the next one.
	boom := errors.New("boom")
	err := st.Tx(context.Background(), func(q store.Queries) error {
		runs = nil
		must(t, gather(q, "lost"))
		return boom
	})
	tx(t, st, func(q store.Queries) error { return gather(q, "kept") })
	if got := fmt.Sprint(runs); !errors.Is(err, boom) || got != "[[kept]]" {
		t.Fatalf("after a failed transaction: err %v, runs %s, want boom and [[kept]]", err, got)
	}
	runs = nil
	must(t, gather(st.Read(), "now"))
	if got := fmt.Sprint(runs); got != "[[now]]" {
		t.Fatalf("outside a transaction: runs %s, want [[now]]", got)
	}
}

// A transaction whose function panics passes the panic to its caller,
// keeps none of its writes, and gives its connection back: more of them than
// any pool holds leave the store usable.
func testTxPanic(t *testing.T, st store.Store) {
	// Bounded, so a store that keeps the connections fails here, not hangs.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 40 {
		key := fmt.Sprintf("panicked-%d", i)
		var err error
		recovered := func() (v any) {
			defer func() { v = recover() }()
			err = st.Tx(ctx, func(q store.Queries) error {
				must(t, q.Settings().Put(ctx, key, []byte("x")))
				panic("kaboom")
			})
			return nil
		}()
		if recovered != "kaboom" {
			t.Fatalf("transaction %d: recovered %v (returned %v), want its function's panic", i, recovered, err)
		}
		_, err = st.Read().Settings().Get(ctx, key)
		wantErr(t, err, store.ErrNotFound, "a panicked transaction's write")
	}
	if err := st.Tx(ctx, func(q store.Queries) error { return q.Settings().Put(ctx, "after-panics", []byte("x")) }); err != nil {
		t.Fatalf("a transaction after 40 panicked ones: %v", err)
	}
}

func testTxRollback(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	boom := errors.New("boom")
	err := st.Tx(ctx, func(q store.Queries) error {
		if err := q.Settings().Put(ctx, "k", []byte("v")); err != nil {
			return err
		}
		if err := appendInTx(q, tn.ID, 3, nil); err != nil {
			return err
		}
		if _, err := q.Admins().Count(ctx); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Tx returned %v, want fn's error unchanged", err)
	}
	_, err = st.Read().Settings().Get(ctx, "k")
	wantErr(t, err, store.ErrNotFound, "setting after rollback")
	if h, _ := st.Read().Audit().Head(ctx, tn.ID); h.Seq != 0 {
		t.Fatalf("audit head after rollback = %+v", h)
	}
	// A cancelled context fails without running fn.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	err = st.Tx(cctx, func(store.Queries) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("Tx with a cancelled context: err %v, ran %v", err, ran)
	}
}

// testTxConcurrentChain has writers race to extend one chain; Head must
// serialise them so no Seq is lost or written twice.
func testTxConcurrentChain(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	const writers, each = 32, 5
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if err := st.Tx(ctx, func(q store.Queries) error { return appendInTx(q, tn.ID, 1, nil) }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	head, err := st.Read().Audit().Head(ctx, tn.ID)
	must(t, err)
	if head.Seq != writers*each {
		t.Fatalf("head at %d after %d appends", head.Seq, writers*each)
	}
	var prev []byte
	var n int64
	must(t, st.Read().Audit().Scan(ctx, tn.ID, 0, func(e store.AuditEntry) error {
		n++
		if e.Seq != n || !bytes.Equal(e.PrevHash, prev) {
			return fmt.Errorf("chain forked at seq %d", e.Seq)
		}
		prev = e.Hash
		return nil
	}))
}

// testTxUsableAfterConflict: a unique clash inside Tx is reported as
// ErrConflict and the transaction goes on, on both engines alike.
func testTxUsableAfterConflict(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	role := newRole(t, st, tn.ID, "ops")
	var createErr error
	tx(t, st, func(q store.Queries) error {
		dup := role
		dup.ID = store.NewID()
		createErr = q.Roles().Create(ctx, dup)
		return q.Settings().Put(ctx, "after-conflict", []byte("ok"))
	})
	wantErr(t, createErr, store.ErrConflict, "Create with taken name inside Tx")
	if v, err := st.Read().Settings().Get(ctx, "after-conflict"); err != nil || string(v) != "ok" {
		t.Fatalf("write after a conflict in the same Tx: %q, %v", v, err)
	}
}
