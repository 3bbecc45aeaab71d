package audit

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func appendN(t testing.TB, st store.Store, tenant string, n int, at func(i int) time.Time) {
	t.Helper()
	ctx := context.Background()
	check(t, st.Tx(ctx, func(q store.Queries) error {
		recs := make([]Record, n)
		for i := range recs {
			recs[i] = testRecord(i)
			recs[i].TenantID = tenant
			recs[i].Time = at(i)
		}
		return Append(ctx, q, recs...)
	}))
}

func now(int) time.Time { return time.Time{} }

func uniqueTenant(t testing.TB) string {
	// Safe as a file name: archive files are named after tenants.
	return fmt.Sprintf("tenant-%s-%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano())
}

func TestAppendChainsPerTenant(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		a, b := uniqueTenant(t)+"-a", uniqueTenant(t)+"-b"
		appendN(t, st, a, 3, now)
		// One Tx touching two tenants, given in reverse order.
		check(t, st.Tx(ctx, func(q store.Queries) error {
			rb, ra := testRecord(1), testRecord(2)
			rb.TenantID, ra.TenantID = b, a
			return Append(ctx, q, rb, ra)
		}))
		// A failed Tx leaves no entry behind.
		errBoom := errors.New("boom")
		err := st.Tx(ctx, func(q store.Queries) error {
			r := testRecord(3)
			r.TenantID = a
			if err := Append(ctx, q, r); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("want errBoom, got %v", err)
		}
		pub := testSigner(t, 1).PublicKey()
		for tenant, want := range map[string]int64{a: 4, b: 1} {
			rep, err := VerifyStore(ctx, st, tenant, pub)
			check(t, err)
			wantProblem(t, rep, "", 0)
			if rep.Entries != want || rep.FirstSeq != 1 || rep.LastSeq != want {
				t.Fatalf("tenant %s: report %+v", tenant, rep)
			}
		}
		reports, err := VerifyAll(ctx, st, pub)
		check(t, err)
		if len(reports) != 2 || reports[0].Problem != nil || reports[1].Problem != nil {
			t.Fatalf("VerifyAll: %+v", reports)
		}
		got, err := st.Read().Audit().List(ctx, a, store.AuditFilter{})
		check(t, err)
		if len(got) != 4 || string(got[0].Details) != `{"b":true,"n":0}` || !bytes.Equal(got[0].PrevHash, genesisHash) {
			t.Fatalf("entries %+v", got)
		}
	})
}

func TestConcurrentAppendIsGapless(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		tenant := uniqueTenant(t)
		const workers, each = 32, 10
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					r := testRecord(i)
					r.TenantID, r.Time = tenant, time.Time{}
					if err := st.Tx(ctx, func(q store.Queries) error { return Append(ctx, q, r) }); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		rep, err := VerifyStore(ctx, st, tenant, testSigner(t, 1).PublicKey())
		check(t, err)
		wantProblem(t, rep, "", 0)
		if rep.Entries != workers*each || rep.LastSeq != workers*each {
			t.Fatalf("report %+v", rep)
		}
		// Entries are timed as they are chained, so time follows seq.
		entries, err := st.Read().Audit().List(ctx, tenant, store.AuditFilter{Limit: workers * each})
		check(t, err)
		slices.SortFunc(entries, func(a, b store.AuditEntry) int { return cmp.Compare(a.Seq, b.Seq) })
		for i := 1; i < len(entries); i++ {
			if entries[i].Time.Before(entries[i-1].Time) {
				t.Fatalf("entry %d is timed %v, before entry %d at %v", entries[i].Seq, entries[i].Time, entries[i-1].Seq, entries[i-1].Time)
			}
		}
	})
}

// Two transactions append to the same two tenants in opposite orders, with
// other work between their appends. Chained one append at a time, the first
// would hold one head and wait for the other while the second holds that one
// and waits for the first: PostgreSQL aborts one as deadlocked, after its
// deadlock_timeout, and the store runs it again.
func TestAppendsInOppositeOrdersDoNotDeadlock(t *testing.T) {
	st := storetest.OpenPostgres(t)
	ctx := t.Context()
	a, b := uniqueTenant(t)+"-a", uniqueTenant(t)+"-b"
	appendN(t, st, a, 1, now)
	appendN(t, st, b, 1, now)
	record := func(tenant string) Record {
		r := testRecord(1)
		r.TenantID, r.Time = tenant, time.Time{}
		return r
	}
	firstHolds, proceed := make(chan struct{}), make(chan struct{})
	var holdOnce sync.Once
	var firstRuns, secondRuns atomic.Int32
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- st.Tx(ctx, func(q store.Queries) error {
			firstRuns.Add(1)
			if err := Append(ctx, q, record(b)); err != nil {
				return err
			}
			if err := q.BeforeCommit(func(store.Queries) error {
				holdOnce.Do(func() { close(firstHolds) })
				<-proceed
				return nil
			}); err != nil {
				return err
			}
			return Append(ctx, q, record(a))
		})
	}()
	<-firstHolds
	secondDone := make(chan error, 1)
	go func() {
		secondDone <- st.Tx(ctx, func(q store.Queries) error {
			secondRuns.Add(1)
			if err := Append(ctx, q, record(a)); err != nil {
				return err
			}
			return Append(ctx, q, record(b))
		})
	}()
	storetest.AwaitLockWaiters(t, st, 1)
	close(proceed)
	check(t, <-firstDone)
	check(t, <-secondDone)
	if f, s := firstRuns.Load(), secondRuns.Load(); f != 1 || s != 1 {
		t.Fatalf("the transactions ran %d and %d times, want once each: one was aborted as deadlocked", f, s)
	}
	for _, tenant := range []string{a, b} {
		rep, err := VerifyStore(ctx, st, tenant, testSigner(t, 1).PublicKey())
		check(t, err)
		wantProblem(t, rep, "", 0)
		if rep.Entries != 3 {
			t.Fatalf("tenant %s holds %d entries, want 3", tenant, rep.Entries)
		}
	}
}

func TestSignerIsCreatedOnceAndShared(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		sealer, err := secrets.NewSealer(bytes.Repeat([]byte{7}, 32))
		check(t, err)
		signers := make([]*Signer, 4)
		var wg sync.WaitGroup
		for i := range signers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := LoadOrCreateSigner(ctx, st, sealer)
				if err != nil {
					t.Error(err)
					return
				}
				signers[i] = s
			}()
		}
		wg.Wait()
		for _, s := range signers {
			if s == nil || !s.PublicKey().Equal(signers[0].PublicKey()) {
				t.Fatal("nodes starting together got different signing keys")
			}
		}
		other, err := secrets.NewSealer(bytes.Repeat([]byte{8}, 32))
		check(t, err)
		if _, err := LoadOrCreateSigner(ctx, st, other); err == nil {
			t.Fatal("signing key opened with another master key")
		}
	})
}

func TestCheckpoints(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		s := testSigner(t, 1)
		tenant := uniqueTenant(t)
		if _, err := MakeCheckpoint(ctx, st, s, tenant, testEpoch); !errors.Is(err, ErrEmptyChain) {
			t.Fatalf("want ErrEmptyChain, got %v", err)
		}
		appendN(t, st, tenant, 3, now)
		cp, err := MakeCheckpoint(ctx, st, s, tenant, testEpoch)
		check(t, err)
		again, err := MakeCheckpoint(ctx, st, s, tenant, testEpoch.Add(time.Hour))
		check(t, err)
		if cp.Seq != 3 || !again.Time.Equal(cp.Time) || !VerifyCheckpoint(s.PublicKey(), cp) {
			t.Fatalf("checkpoint %+v, again %+v", cp, again)
		}
		appendN(t, st, tenant, 2, now)
		c := NewCheckpointer(st, s, "node-a", time.Minute, nil)
		n, err := c.RunOnce(ctx, time.Now())
		check(t, err)
		if n < 1 {
			t.Fatalf("checkpointer made %d checkpoints", n)
		}
		// Another node does not run while node-a holds the lease.
		if n, err := NewCheckpointer(st, s, "node-b", time.Minute, nil).RunOnce(ctx, time.Now()); err != nil || n != 0 {
			t.Fatalf("node-b made %d checkpoints (err %v) while node-a held the lease", n, err)
		}
		// Run checkpoints at once, then stops with its context.
		appendN(t, st, tenant, 1, now)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { c.Run(runCtx); close(done) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			cps, err := st.Read().Audit().Checkpoints(ctx, tenant)
			check(t, err)
			if cps[len(cps)-1].Seq == 6 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("Run made no checkpoint")
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
		rep, err := VerifyStore(ctx, st, tenant, s.PublicKey())
		check(t, err)
		wantProblem(t, rep, "", 0)
		if rep.Checkpoints != 3 {
			t.Fatalf("report %+v", rep)
		}
		rep, err = VerifyStore(ctx, st, tenant, testSigner(t, 2).PublicKey())
		check(t, err)
		wantProblem(t, rep, ProblemBadSignature, 3)
	})
}

func TestExportVerifiesOffline(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		s := testSigner(t, 1)
		tenant := uniqueTenant(t)
		appendN(t, st, tenant, 5, now)
		_, err := MakeCheckpoint(ctx, st, s, tenant, time.Now())
		check(t, err)
		var buf bytes.Buffer
		n, err := Export(ctx, st, tenant, &buf)
		check(t, err)
		rep, err := VerifyExport(&buf, s.PublicKey())
		check(t, err)
		wantProblem(t, rep, "", 0)
		if n != 5 || rep.Entries != 5 || rep.Checkpoints != 1 || rep.TenantID != tenant {
			t.Fatalf("exported %d, report %+v", n, rep)
		}
	})
}
