package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// fakeHash stands in for the chain arithmetic, which lives in internal/audit.
func fakeHash(tenantID string, seq int64) []byte {
	return []byte(fmt.Sprintf("%s#%d", tenantID, seq))
}

// appendEntries appends n entries after the tenant's head inside one Tx,
// shaped by mod (which may be nil).
func appendEntries(t *testing.T, st store.Store, tenantID string, n int, mod func(e *store.AuditEntry)) {
	t.Helper()
	tx(t, st, func(q store.Queries) error { return appendInTx(q, tenantID, n, mod) })
}

func appendInTx(q store.Queries, tenantID string, n int, mod func(e *store.AuditEntry)) error {
	ctx := context.Background()
	head, err := q.Audit().Head(ctx, tenantID)
	if err != nil {
		return err
	}
	entries := make([]store.AuditEntry, n)
	prev := head.Hash
	for i := range entries {
		seq := head.Seq + int64(i) + 1
		e := store.AuditEntry{TenantID: tenantID, Seq: seq, Time: at.Add(time.Duration(seq) * time.Second),
			ActorType: store.ActorAdmin, ActorID: "admin-1", Action: "admin.create", TargetType: "admin",
			TargetID: fmt.Sprint(seq), Outcome: "success", SourceIP: "192.0.2.1", RequestID: "req",
			PrevHash: prev, Hash: fakeHash(tenantID, seq)}
		if mod != nil {
			mod(&e)
		}
		prev, entries[i] = e.Hash, e
	}
	next := store.AuditHead{TenantID: tenantID, Seq: head.Seq + int64(n), Hash: prev, BaseSeq: head.BaseSeq,
		BaseHash: head.BaseHash}
	return q.Audit().Append(ctx, next, entries)
}

func testAuditHeadAppend(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	r := st.Read().Audit()
	head, err := r.Head(ctx, tn.ID)
	must(t, err)
	if !reflect.DeepEqual(head, store.AuditHead{}) {
		t.Fatalf("Head of an empty chain = %+v, want zero", head)
	}
	// Head inside Tx on an empty chain must not make the tenant look audited.
	tx(t, st, func(q store.Queries) error { _, err := q.Audit().Head(ctx, tn.ID); return err })
	if ts, _ := r.Tenants(ctx); len(ts) != 0 {
		t.Fatalf("Tenants after reading an empty head = %v", ts)
	}
	details := json.RawMessage(`{"email":"x@example.test","n":1}`)
	appendEntries(t, st, tn.ID, 3, func(e *store.AuditEntry) {
		if e.Seq == 2 {
			e.Details, e.Reason = details, "because"
		}
	})
	head, err = r.Head(ctx, tn.ID)
	must(t, err)
	want := store.AuditHead{TenantID: tn.ID, Seq: 3, Hash: fakeHash(tn.ID, 3)}
	if !reflect.DeepEqual(head, want) {
		t.Fatalf("Head = %+v, want %+v", head, want)
	}
	got, err := r.List(ctx, tn.ID, store.AuditFilter{})
	must(t, err)
	if len(got) != 3 || string(got[1].Details) != string(details) || got[1].Reason != "because" ||
		got[0].Details != nil || got[0].PrevHash != nil || string(got[2].PrevHash) != string(fakeHash(tn.ID, 2)) ||
		!got[2].Time.Equal(micro(at.Add(3*time.Second))) || got[2].Time.Location() != time.UTC {
		t.Fatalf("List after Append = %+v", got)
	}
	// Replaying seq 3 is a conflict and leaves the head alone.
	err = st.Tx(ctx, func(q store.Queries) error {
		return q.Audit().Append(ctx, store.AuditHead{TenantID: tn.ID, Seq: 3, Hash: []byte("fork")},
			[]store.AuditEntry{{TenantID: tn.ID, Seq: 3, Time: at, Hash: []byte("fork")}})
	})
	wantErr(t, err, store.ErrConflict, "Append with an existing Seq")
	if head, _ = r.Head(ctx, tn.ID); string(head.Hash) != string(fakeHash(tn.ID, 3)) {
		t.Fatalf("failed Append moved the head to %+v", head)
	}
	ts, err := r.Tenants(ctx)
	must(t, err)
	if !reflect.DeepEqual(ts, []string{tn.ID}) {
		t.Fatalf("Tenants = %v, want [%s]", ts, tn.ID)
	}
}

func testAuditList(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn, other := newTenant(t, st, ""), newTenant(t, st, "")
	actions := []string{"admin.create", "admin.delete", "tenant.create", "admin_x.create", "session.login"}
	appendEntries(t, st, tn.ID, 50, func(e *store.AuditEntry) {
		e.Action = actions[e.Seq%5]
		if e.Seq%10 == 0 {
			e.ActorType, e.ActorID, e.TargetType, e.TargetID = store.ActorToken, "token-7", "device", "dev-1"
		}
	})
	appendEntries(t, st, other.ID, 10, nil)
	seqs := func(f store.AuditFilter) []int64 {
		t.Helper()
		es, err := st.Read().Audit().List(ctx, tn.ID, f)
		must(t, err)
		out := []int64{}
		for _, e := range es {
			if e.TenantID != tn.ID {
				t.Fatalf("List returned an entry of tenant %s", e.TenantID)
			}
			out = append(out, e.Seq)
		}
		return out
	}
	cases := []struct {
		name string
		f    store.AuditFilter
		want []int64
	}{
		{"exact action", store.AuditFilter{Action: "admin.delete", Limit: 3}, []int64{1, 6, 11}},
		{"prefix action", store.AuditFilter{Action: "admin.*", AfterSeq: 40}, []int64{41, 45, 46, 50}},
		{"prefix is literal", store.AuditFilter{Action: "admin_*", Limit: 2}, []int64{3, 8}},
		{"all by star", store.AuditFilter{Action: "*", BeforeSeq: 4}, []int64{1, 2, 3}},
		{"actor", store.AuditFilter{ActorType: store.ActorToken, ActorID: "token-7"}, []int64{10, 20, 30, 40, 50}},
		{"target", store.AuditFilter{TargetType: "device", TargetID: "dev-1", Descending: true, Limit: 2}, []int64{50, 40}},
		{"time window", store.AuditFilter{Since: at.Add(5 * time.Second), Until: at.Add(8 * time.Second)}, []int64{5, 6, 7}},
		{"descending cursor", store.AuditFilter{BeforeSeq: 20, Descending: true, Limit: 3}, []int64{19, 18, 17}},
		{"combined", store.AuditFilter{Action: "tenant.create", Since: at.Add(20 * time.Second), Limit: 2}, []int64{22, 27}},
		{"no match", store.AuditFilter{ActorID: "nobody"}, []int64{}},
	}
	for _, c := range cases {
		if got := seqs(c.f); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: List = %v, want %v", c.name, got, c.want)
		}
	}
	if n := len(seqs(store.AuditFilter{})); n != 50 {
		t.Errorf("default limit returned %d of 50", n)
	}
	if n := len(seqs(store.AuditFilter{Limit: 5000})); n != 50 {
		t.Errorf("large limit returned %d of 50", n)
	}
}

func testAuditScan(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	appendEntries(t, st, tn.ID, 1203, nil) // more than one internal chunk
	var got []int64
	must(t, st.Read().Audit().Scan(ctx, tn.ID, 2, func(e store.AuditEntry) error {
		got = append(got, e.Seq)
		return nil
	}))
	if len(got) != 1201 || got[0] != 3 || got[1200] != 1203 {
		t.Fatalf("Scan after 2 saw %d entries from %d", len(got), got[0])
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("Scan out of order at %d: %d after %d", i, got[i], got[i-1])
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := st.Read().Audit().Scan(ctx, tn.ID, 0, func(store.AuditEntry) error {
		calls++
		if calls == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 5 {
		t.Fatalf("Scan with a failing callback: err %v after %d calls", err, calls)
	}
	// The callback may write: Scan must not hold what a write needs.
	n := 0
	must(t, st.Read().Audit().Scan(ctx, tn.ID, 1200, func(e store.AuditEntry) error {
		n++
		return st.Tx(ctx, func(q store.Queries) error { return q.Settings().Put(ctx, "scan-"+fmt.Sprint(e.Seq), nil) })
	}))
	if n != 3 {
		t.Fatalf("Scan with writing callback saw %d entries", n)
	}
}

func testAuditCheckpointsAndArchive(t *testing.T, st store.Store) {
	ctx := context.Background()
	tn := newTenant(t, st, "")
	appendEntries(t, st, tn.ID, 20, nil)
	for _, seq := range []int64{15, 5, 10} {
		c := store.Checkpoint{TenantID: tn.ID, Seq: seq, Hash: fakeHash(tn.ID, seq), Time: at.Add(time.Duration(seq) * time.Second),
			KeyID: "0011223344556677", Signature: []byte("sig")}
		tx(t, st, func(q store.Queries) error { return q.Audit().AddCheckpoint(ctx, c) })
	}
	dup := store.Checkpoint{TenantID: tn.ID, Seq: 10, Time: at, KeyID: "k"}
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Audit().AddCheckpoint(ctx, dup) }),
		store.ErrConflict, "AddCheckpoint twice at one Seq")
	r := st.Read().Audit()
	cps, err := r.Checkpoints(ctx, tn.ID)
	must(t, err)
	if len(cps) != 3 || cps[0].Seq != 5 || cps[2].Seq != 15 || !cps[1].Time.Equal(micro(at.Add(10*time.Second))) {
		t.Fatalf("Checkpoints = %+v", cps)
	}

	for _, c := range []struct {
		t    time.Time
		want int64
	}{{at, 0}, {at.Add(time.Second), 0}, {at.Add(7*time.Second + time.Millisecond), 7}, {at.Add(time.Hour), 20}} {
		got, err := r.LastSeqBefore(ctx, tn.ID, c.t)
		must(t, err)
		if got != c.want {
			t.Errorf("LastSeqBefore(%v) = %d, want %d", c.t, got, c.want)
		}
	}

	head, err := r.Head(ctx, tn.ID)
	must(t, err)
	head.BaseSeq, head.BaseHash = 10, fakeHash(tn.ID, 10)
	var n int
	tx(t, st, func(q store.Queries) error {
		var err error
		n, err = q.Audit().DeleteThrough(ctx, head, 10)
		return err
	})
	if n != 10 {
		t.Fatalf("DeleteThrough removed %d entries, want 10", n)
	}
	got, err := r.Head(ctx, tn.ID)
	must(t, err)
	if !reflect.DeepEqual(got, head) {
		t.Fatalf("Head after DeleteThrough = %+v, want %+v", got, head)
	}
	cps, err = r.Checkpoints(ctx, tn.ID)
	must(t, err)
	if len(cps) != 2 || cps[0].Seq != 10 {
		t.Fatalf("Checkpoints after DeleteThrough = %+v, want those at 10 and 15", cps)
	}
	es, err := r.List(ctx, tn.ID, store.AuditFilter{})
	must(t, err)
	if len(es) != 10 || es[0].Seq != 11 {
		t.Fatalf("entries after DeleteThrough start at %d (%d left)", es[0].Seq, len(es))
	}
	// The chain continues from the moved head.
	appendEntries(t, st, tn.ID, 1, nil)
	if got, _ = r.Head(ctx, tn.ID); got.Seq != 21 || got.BaseSeq != 10 {
		t.Fatalf("Head after appending past an archive = %+v", got)
	}
}
