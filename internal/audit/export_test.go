package audit

import (
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/store"
)

// A 10-entry chain with checkpoints at 5 and 10. Line 0 is the header, line
// i the entry with seq i, lines 11 and 12 the checkpoints.
func tamperFixture(t *testing.T) ([]store.AuditEntry, []store.Checkpoint, []string) {
	s := testSigner(t, 1)
	entries, _ := buildChain(t, store.AuditHead{}, 10)
	cps := []store.Checkpoint{signAt(s, entries[4]), signAt(s, entries[9])}
	return entries, cps, exportLines(t, store.AuditHead{}, entries, cps)
}

func TestVerifyExportNamesTheTampering(t *testing.T) {
	entries, _, _ := tamperFixture(t)
	s := testSigner(t, 1)
	forged := entries[3]
	forged.Action = "device.wipe"
	rehashed := forged
	rehashed.Hash = HashEntry(rehashed)
	cases := []struct {
		name   string
		tamper func(t *testing.T, lines []string) []string
		kind   string
		seq    int64
	}{
		{"untouched", func(_ *testing.T, l []string) []string { return l }, "", 0},
		{"remove an entry", func(_ *testing.T, l []string) []string { return slices.Delete(l, 4, 5) }, ProblemRemoved, 4},
		{"remove the last entry", func(_ *testing.T, l []string) []string { return slices.Delete(l, 10, 11) }, ProblemTruncated, 10},
		{"swap two entries", func(_ *testing.T, l []string) []string { l[3], l[4] = l[4], l[3]; return l }, ProblemReordered, 3},
		{"move an entry later", func(_ *testing.T, l []string) []string {
			moved := l[3]
			l = slices.Delete(l, 3, 4)
			return slices.Insert(l, 7, moved)
		}, ProblemReordered, 3},
		{"duplicate an entry", func(_ *testing.T, l []string) []string { return slices.Insert(l, 5, l[4]) }, ProblemInserted, 4},
		{"insert a forged entry", func(t *testing.T, l []string) []string {
			return slices.Insert(l, 4, exportLines(t, store.AuditHead{}, []store.AuditEntry{forged}, nil)[1])
		}, ProblemInserted, 4},
		{"insert a rehashed forged entry", func(t *testing.T, l []string) []string {
			return slices.Insert(l, 4, exportLines(t, store.AuditHead{}, []store.AuditEntry{rehashed}, nil)[1])
		}, ProblemInserted, 4},
		{"replace an entry with a rehashed one", func(t *testing.T, l []string) []string {
			l[4] = exportLines(t, store.AuditHead{}, []store.AuditEntry{rehashed}, nil)[1]
			return l
		}, ProblemInserted, 5},
		{"rewrite the chain from entry 3", func(t *testing.T, l []string) []string {
			es := slices.Clone(entries[:10])
			es[2].Reason = "rewritten"
			head := store.AuditHead{TenantID: testTenant, Seq: 2, Hash: es[1].Hash}
			linkEntries(head, es[2:])
			return append(exportLines(t, store.AuditHead{}, es, nil), l[11:]...)
		}, ProblemCheckpointMismatch, 5},
		{"alter a checkpoint's hash", func(t *testing.T, l []string) []string {
			l[11] = editLine(t, l[11], "hash", hex.EncodeToString(entries[5].Hash))
			return l
		}, ProblemBadSignature, 5},
		{"alter a checkpoint's signature", func(t *testing.T, l []string) []string {
			l[12] = editLine(t, l[12], "signature", strings.Repeat("00", 64))
			return l
		}, ProblemBadSignature, 10},
		{"checkpoint by another key", func(t *testing.T, l []string) []string {
			l[11] = exportLines(t, store.AuditHead{}, nil, []store.Checkpoint{signAt(testSigner(t, 2), entries[4])})[1]
			return l
		}, ProblemBadSignature, 5},
		{"checkpoint beyond the end", func(t *testing.T, l []string) []string {
			return slices.Delete(l, 9, 11)
		}, ProblemTruncated, 9},
		{"drop the checkpoints", func(_ *testing.T, l []string) []string { return l[:11] }, "", 0},
	}
	// Every field of entry 4 is covered by its hash.
	for _, field := range []string{"tenant_id", "time", "actor_type", "actor_id", "action", "target_type", "target_id",
		"outcome", "source_ip", "request_id", "reason", "details", "prev_hash", "hash"} {
		value := any("x")
		switch field {
		case "time":
			value = "2026-11-23T09:00:04.123457Z"
		case "details":
			value = map[string]any{"n": 5, "b": true}
		case "prev_hash", "hash":
			value = strings.Repeat("ab", 32)
		}
		cases = append(cases, struct {
			name   string
			tamper func(t *testing.T, lines []string) []string
			kind   string
			seq    int64
		}{"alter " + field, func(t *testing.T, l []string) []string { l[4] = editLine(t, l[4], field, value); return l }, ProblemAltered, 4})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, lines := tamperFixture(t)
			lines = tc.tamper(t, lines)
			rep, err := VerifyExport(strings.NewReader(strings.Join(lines, "\n")+"\n"), s.PublicKey())
			check(t, err)
			wantProblem(t, rep, tc.kind, tc.seq)
			if rep.TenantID != testTenant {
				t.Fatalf("tenant %q", rep.TenantID)
			}
		})
	}
}

func TestVerifyExportReportsCounts(t *testing.T) {
	_, _, lines := tamperFixture(t)
	rep, err := VerifyExport(strings.NewReader(strings.Join(lines, "\n")), testSigner(t, 1).PublicKey())
	check(t, err)
	if rep.Entries != 10 || rep.FirstSeq != 1 || rep.LastSeq != 10 || rep.Checkpoints != 2 || rep.Problem != nil {
		t.Fatalf("report %+v", rep)
	}
}

func TestVerifyExportWithArchivedBase(t *testing.T) {
	s := testSigner(t, 1)
	old, base := buildChain(t, store.AuditHead{}, 4)
	live, _ := buildChain(t, base, 3)
	base.BaseSeq, base.BaseHash = base.Seq, base.Hash
	anchor := signAt(s, old[3])
	cases := []struct {
		name   string
		header store.AuditHead
		cps    []store.Checkpoint
		kind   string
		seq    int64
	}{
		{"anchored", base, []store.Checkpoint{anchor}, "", 0},
		{"unanchored", base, nil, ProblemBrokenBase, 5},
		{"wrong base hash", store.AuditHead{BaseSeq: 4, BaseHash: old[2].Hash}, []store.Checkpoint{anchor}, ProblemBrokenBase, 4},
		{"short base hash", store.AuditHead{BaseSeq: 4, BaseHash: []byte{1}}, []store.Checkpoint{anchor}, ProblemBrokenBase, 4},
		{"entries missing after the base", store.AuditHead{BaseSeq: 3, BaseHash: old[2].Hash}, []store.Checkpoint{signAt(s, old[2])}, ProblemRemoved, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := exportLines(t, tc.header, live, tc.cps)
			rep, err := VerifyExport(strings.NewReader(strings.Join(lines, "\n")), s.PublicKey())
			check(t, err)
			wantProblem(t, rep, tc.kind, tc.seq)
		})
	}
}

func TestVerifyExportRejectsWhatIsNotAnExport(t *testing.T) {
	pub := testSigner(t, 1).PublicKey()
	for name, in := range map[string]string{
		"empty":          "",
		"no header":      `{"type":"entry","seq":1}`,
		"not json":       "hello\n",
		"wrong version":  `{"type":"header","format":"steward-audit-export","version":2}`,
		"unknown type":   `{"type":"header","format":"steward-audit-export","version":1}` + "\n" + `{"type":"comment"}`,
		"bad entry time": `{"type":"header","format":"steward-audit-export","version":1}` + "\n" + `{"type":"entry","time":"yesterday"}`,
		"bad hash hex":   `{"type":"header","format":"steward-audit-export","version":1}` + "\n" + `{"type":"checkpoint","time":"2026-01-01T00:00:00Z","hash":"zz"}`,
		"line too long":  `{"type":"header","format":"steward-audit-export","version":1}` + "\n" + strings.Repeat(" ", maxExportLine+1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := VerifyExport(strings.NewReader(in), pub); !errors.Is(err, ErrMalformedExport) {
				t.Fatalf("want ErrMalformedExport, got %v", err)
			}
		})
	}
}

func FuzzVerifyExport(f *testing.F) {
	s := testSigner(f, 1)
	entries, _ := buildChain(f, store.AuditHead{}, 3)
	lines := exportLines(f, store.AuditHead{}, entries, []store.Checkpoint{signAt(s, entries[2])})
	f.Add([]byte(strings.Join(lines, "\n")))
	f.Add([]byte(strings.Join(lines[:2], "\n")))
	f.Add([]byte(`{"type":"header","format":"steward-audit-export","version":1,"base_seq":9223372036854775807}` + "\n" + lines[1]))
	f.Add([]byte(`{"type":"header","format":"steward-audit-export","version":1,"base_seq":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := VerifyExport(strings.NewReader(string(data)), s.PublicKey())
		if err == nil && rep.Problem != nil && rep.Problem.Kind == "" {
			t.Fatal("a problem without a kind")
		}
	})
}
