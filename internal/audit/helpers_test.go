package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

const testTenant = "0193b7c4-0000-7000-8000-000000000001"

// testSigner is deterministic so golden values in tests and docs agree.
func testSigner(t testing.TB, fill byte) *Signer {
	t.Helper()
	s, err := NewSignerFromSeed(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testEpoch = time.Date(2026, 11, 23, 9, 0, 0, 123456000, time.UTC)

// testRecord is the i-th record of a test chain; every field is set so every
// field can be tampered with.
func testRecord(i int) Record {
	return Record{TenantID: testTenant, ActorType: store.ActorAdmin, ActorID: "admin-1", Action: "device.lock",
		TargetType: "device", TargetID: "device-" + strings.Repeat("x", i%3), Outcome: OutcomeSuccess,
		SourceIP: "192.0.2.7", RequestID: "req-1", Reason: "lost phone",
		Details: map[string]any{"n": i, "b": true}, Time: testEpoch.Add(time.Duration(i) * time.Second)}
}

// buildChain makes n entries after head without a store, as Append would.
func buildChain(t testing.TB, head store.AuditHead, n int) ([]store.AuditEntry, store.AuditHead) {
	t.Helper()
	entries := make([]store.AuditEntry, n)
	for i := range entries {
		e, err := entryFromRecord(testRecord(int(head.Seq)+i+1), testEpoch)
		if err != nil {
			t.Fatal(err)
		}
		entries[i] = e
	}
	head.TenantID = testTenant
	return entries, linkEntries(head, entries)
}

func signAt(s *Signer, e store.AuditEntry) store.Checkpoint {
	return s.signCheckpoint(store.Checkpoint{TenantID: e.TenantID, Seq: e.Seq, Hash: e.Hash, Time: e.Time.Add(time.Minute)})
}

// exportLines renders an export of entries and checkpoints as its lines.
func exportLines(t testing.TB, base store.AuditHead, entries []store.AuditEntry, cps []store.Checkpoint) []string {
	t.Helper()
	var buf bytes.Buffer
	x := newExportWriter(&buf)
	check(t, x.header(testTenant, testEpoch, base.BaseSeq, base.BaseHash, "k"))
	for _, e := range entries {
		check(t, x.entry(e))
	}
	for _, c := range cps {
		check(t, x.checkpoint(c))
	}
	check(t, x.flush())
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

// editLine rewrites one JSON field of a line.
func editLine(t testing.TB, line, field string, value any) string {
	t.Helper()
	var m map[string]json.RawMessage
	check(t, json.Unmarshal([]byte(line), &m))
	b, err := json.Marshal(value)
	check(t, err)
	m[field] = b
	out, err := json.Marshal(m)
	check(t, err)
	return string(out)
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantProblem(t testing.TB, rep Report, kind string, seq int64) {
	t.Helper()
	if kind == "" {
		if rep.Problem != nil {
			t.Fatalf("want no problem, got %+v", *rep.Problem)
		}
		return
	}
	if rep.Problem == nil {
		t.Fatalf("want %s at seq %d, got no problem (report %+v)", kind, seq, rep)
	}
	if rep.Problem.Kind != kind || rep.Problem.Seq != seq {
		t.Fatalf("want %s at seq %d, got %+v", kind, seq, *rep.Problem)
	}
}
