package audit

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
)

// TestVerifyStoreFindsDatabaseTampering edits the SQLite file behind the
// store's back, as someone with access to the database would.
func TestVerifyStoreFindsDatabaseTampering(t *testing.T) {
	// rehashed rewrites entry seq and recomputes its hash, as someone who
	// knows the format would.
	rehashed := func(seq int64) func(t *testing.T, st store.Store, raw *sql.DB) {
		return func(t *testing.T, st store.Store, raw *sql.DB) {
			es, err := st.Read().Audit().List(context.Background(), testTenant, store.AuditFilter{AfterSeq: seq - 1, Limit: 1})
			check(t, err)
			e := es[0]
			e.Action = "device.wipe"
			exec(t, raw, `UPDATE audit_entries SET action = ?, hash = ? WHERE tenant_id = ? AND seq = ?`, e.Action, HashEntry(e), testTenant, seq)
		}
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, st store.Store, raw *sql.DB)
		kind   string
		seq    int64
	}{
		{"untouched", func(*testing.T, store.Store, *sql.DB) {}, "", 0},
		{"alter a field", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `UPDATE audit_entries SET reason = 'nothing to see' WHERE tenant_id = ? AND seq = 4`, testTenant)
		}, ProblemAltered, 4},
		{"alter details", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `UPDATE audit_entries SET details = '{"b":false,"n":3}' WHERE tenant_id = ? AND seq = 4`, testTenant)
		}, ProblemAltered, 4},
		{"alter the time", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `UPDATE audit_entries SET time = time + 1 WHERE tenant_id = ? AND seq = 4`, testTenant)
		}, ProblemAltered, 4},
		{"remove an entry", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `DELETE FROM audit_entries WHERE tenant_id = ? AND seq = 4`, testTenant)
		}, ProblemRemoved, 4},
		{"remove the last entries", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `DELETE FROM audit_entries WHERE tenant_id = ? AND seq >= 9`, testTenant)
		}, ProblemTruncated, 9},
		{"remove the last entries and move the head", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `DELETE FROM audit_entries WHERE tenant_id = ? AND seq >= 5`, testTenant)
			exec(t, raw, `UPDATE audit_heads SET seq = 4, hash = (SELECT hash FROM audit_entries WHERE tenant_id = ? AND seq = 4) WHERE tenant_id = ?`, testTenant, testTenant)
		}, ProblemTruncated, 5}, // the checkpoint at 6 remembers
		{"swap two entries", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `UPDATE audit_entries SET seq = -seq WHERE tenant_id = ? AND seq IN (3, 4)`, testTenant)
			exec(t, raw, `UPDATE audit_entries SET seq = 7 + seq WHERE tenant_id = ? AND seq IN (-3, -4)`, testTenant)
		}, ProblemAltered, 3},
		{"replace an entry with a rehashed one", rehashed(4), ProblemInserted, 5},
		// With segments of 3, entries 1-5 and 6-10 are verified in parallel.
		{"replace the last entry of a segment", rehashed(5), ProblemInserted, 6},
		{"remove entries across a segment join", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `DELETE FROM audit_entries WHERE tenant_id = ? AND seq IN (5, 6)`, testTenant)
		}, ProblemRemoved, 5},
		{"remove the first entry of a segment", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `DELETE FROM audit_entries WHERE tenant_id = ? AND seq = 6`, testTenant)
		}, ProblemRemoved, 6},
		{"alter a checkpoint", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_entries WHERE tenant_id = ? AND seq = 1) WHERE tenant_id = ? AND seq = 6`, testTenant, testTenant)
		}, ProblemBadSignature, 6},
		{"alter the head", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `UPDATE audit_heads SET hash = (SELECT hash FROM audit_entries WHERE tenant_id = ? AND seq = 1) WHERE tenant_id = ?`, testTenant, testTenant)
		}, ProblemAltered, 10},
	}
	for _, segment := range []int64{minSegment, 3} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/segments of %d", tc.name, segment), func(t *testing.T) {
				defer func(old int64) { minSegment = old }(minSegment)
				minSegment = segment
				verifyTampered(t, tc.tamper, tc.kind, tc.seq)
			})
		}
	}
}

func verifyTampered(t *testing.T, tamper func(t *testing.T, st store.Store, raw *sql.DB), kind string, seq int64) {
	s := testSigner(t, 1)
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "steward.db")
	st, err := sqlstore.Open(ctx, path)
	check(t, err)
	defer st.Close()
	_, err = st.Migrate(ctx)
	check(t, err)
	appendN(t, st, testTenant, 6, now)
	_, err = MakeCheckpoint(ctx, st, s, testTenant, testEpoch)
	check(t, err)
	appendN(t, st, testTenant, 4, now)
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	check(t, err)
	defer raw.Close()
	tamper(t, st, raw)
	rep, err := VerifyStore(ctx, st, testTenant, s.PublicKey())
	check(t, err)
	wantProblem(t, rep, kind, seq)
	if kind == "" && (rep.Entries != 10 || rep.FirstSeq != 1 || rep.LastSeq != 10 || rep.Checkpoints != 1) {
		t.Fatalf("report %+v", rep)
	}
}

func TestVerifyStoreFindsABrokenBase(t *testing.T) {
	ctx := t.Context()
	s := testSigner(t, 1)
	path := filepath.Join(t.TempDir(), "steward.db")
	st, err := sqlstore.Open(ctx, path)
	check(t, err)
	defer st.Close()
	_, err = st.Migrate(ctx)
	check(t, err)
	appendN(t, st, testTenant, 6, func(i int) time.Time { return testEpoch.Add(time.Duration(i) * time.Hour) })
	_, err = Archive(ctx, st, s, testTenant, testEpoch.Add(150*time.Minute), io.Discard) // entries 1..3
	check(t, err)
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	check(t, err)
	defer raw.Close()
	exec(t, raw, `UPDATE audit_heads SET base_hash = (SELECT hash FROM audit_entries WHERE tenant_id = ? AND seq = 5) WHERE tenant_id = ?`, testTenant, testTenant)
	rep, err := VerifyStore(ctx, st, testTenant, s.PublicKey())
	check(t, err)
	wantProblem(t, rep, ProblemBrokenBase, 3)
	exec(t, raw, `DELETE FROM audit_checkpoints WHERE tenant_id = ? AND seq = 3`, testTenant)
	rep, err = VerifyStore(ctx, st, testTenant, s.PublicKey())
	check(t, err)
	wantProblem(t, rep, ProblemBrokenBase, 4)
}

func exec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}
