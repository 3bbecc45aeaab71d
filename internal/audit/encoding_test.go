package audit

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// docExample is the worked example of docs/audit-format.md; if this test
// changes, the document changes with it.
func docExample() store.AuditEntry {
	return store.AuditEntry{TenantID: "t1", Seq: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC),
		ActorType: store.ActorAdmin, ActorID: "a1", Action: "device.lock", TargetType: "device", TargetID: "d1",
		Outcome: "success", SourceIP: "192.0.2.1", RequestID: "r1", Reason: "", Details: json.RawMessage(`{"k":"v"}`),
		PrevHash: make([]byte, 32)}
}

const (
	docExampleEncoding = "01027431080000000000000001080006475ef6574f3505" +
		"61646d696e026131" + "0b6465766963652e6c6f636b" + "06646576696365" + "026431" + "0773756363657373" +
		"093139322e302e322e31" + "027231" + "00" + "097b226b223a2276227d" +
		"20" + "0000000000000000000000000000000000000000000000000000000000000000"
	docExampleHash              = "7bbedf4340ac53ae49021c095042a44fa15d114bd170b9cd8210e290c576cdac"
	docExampleCheckpointMessage = "1b737465776172642d61756469742d636865636b706f696e742d7631" + "027431" +
		"080000000000000001" + "20" + docExampleHash + "080006475ef9942f00"
)

func TestCanonicalEncodingMatchesTheDocument(t *testing.T) {
	got := hex.EncodeToString(appendCanonicalEntry(nil, docExample()))
	if got != docExampleEncoding {
		t.Fatalf("encoding changed:\n got %s\nwant %s", got, docExampleEncoding)
	}
	if h := hex.EncodeToString(HashEntry(docExample())); h != docExampleHash {
		t.Fatalf("hash changed: %s", h)
	}
	cp := store.Checkpoint{TenantID: "t1", Seq: 1, Hash: HashEntry(docExample()), Time: time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC)}
	s := testSigner(t, 1)
	signed := s.signCheckpoint(cp)
	if m := hex.EncodeToString(CheckpointMessage(cp)); m != docExampleCheckpointMessage {
		t.Fatalf("checkpoint message changed: %s", m)
	}
	t.Logf("key id %s signature %x\n%s", s.KeyID(), signed.Signature, s.PublicKeyPEM())
	if !VerifyCheckpoint(s.PublicKey(), signed) {
		t.Fatal("own checkpoint does not verify")
	}
}

func TestHashCoversEveryField(t *testing.T) {
	base := docExample()
	edits := map[string]func(e *store.AuditEntry){
		"tenant": func(e *store.AuditEntry) { e.TenantID = "t2" }, "seq": func(e *store.AuditEntry) { e.Seq = 2 },
		"time":  func(e *store.AuditEntry) { e.Time = e.Time.Add(time.Microsecond) },
		"actor": func(e *store.AuditEntry) { e.ActorType = store.ActorToken }, "actor id": func(e *store.AuditEntry) { e.ActorID = "a2" },
		"action": func(e *store.AuditEntry) { e.Action = "device.wipe" }, "target type": func(e *store.AuditEntry) { e.TargetType = "admin" },
		"target id": func(e *store.AuditEntry) { e.TargetID = "d2" }, "outcome": func(e *store.AuditEntry) { e.Outcome = "denied" },
		"source ip": func(e *store.AuditEntry) { e.SourceIP = "192.0.2.2" }, "request id": func(e *store.AuditEntry) { e.RequestID = "r2" },
		"reason": func(e *store.AuditEntry) { e.Reason = "x" }, "details": func(e *store.AuditEntry) { e.Details = nil },
		"prev": func(e *store.AuditEntry) { e.PrevHash = append([]byte{1}, e.PrevHash[1:]...) },
		// Length prefixes keep field boundaries: moving a byte from one
		// field to the next changes the hash.
		"boundary": func(e *store.AuditEntry) { e.ActorID, e.Action = "a1d", "evice.lock" },
	}
	want := hex.EncodeToString(HashEntry(base))
	for name, edit := range edits {
		e := docExample()
		edit(&e)
		if hex.EncodeToString(HashEntry(e)) == want {
			t.Errorf("changing %s does not change the hash", name)
		}
	}
}

func TestAppendValidatesRecords(t *testing.T) {
	ok := testRecord(1)
	cases := map[string]func(r *Record){
		"no tenant":        func(r *Record) { r.TenantID = "" },
		"no action":        func(r *Record) { r.Action = "" },
		"bad actor type":   func(r *Record) { r.ActorType = "robot" },
		"bad outcome":      func(r *Record) { r.Outcome = "ok" },
		"long reason":      func(r *Record) { r.Reason = strings.Repeat("r", maxReasonLen+1) },
		"long actor id":    func(r *Record) { r.ActorID = strings.Repeat("a", maxIDLen+1) },
		"invalid utf8":     func(r *Record) { r.TargetID = "\xff" },
		"nul byte":         func(r *Record) { r.Reason = "a\x00b" },
		"huge details":     func(r *Record) { r.Details = map[string]any{"x": strings.Repeat("d", maxDetailsLen)} },
		"unencodable json": func(r *Record) { r.Details = map[string]any{"f": func() {}} },
	}
	for name, edit := range cases {
		r := ok
		edit(&r)
		// Validation runs before any store call, so no store is needed.
		if err := Append(t.Context(), nil, r); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: want ErrInvalidRecord, got %v", name, err)
		}
	}
	e, err := entryFromRecord(ok, testEpoch)
	check(t, err)
	if string(e.Details) != `{"b":true,"n":1}` || !e.Time.Equal(ok.Time.Truncate(time.Microsecond)) {
		t.Fatalf("entry %+v", e)
	}
}

func TestPublicKeyPEMRoundTrip(t *testing.T) {
	s := testSigner(t, 1)
	pub, err := ParsePublicKeyPEM(s.PublicKeyPEM())
	check(t, err)
	if !pub.Equal(s.PublicKey()) || KeyIDOf(pub) != s.KeyID() || len(s.KeyID()) != 16 {
		t.Fatal("public key does not round-trip")
	}
	if _, err := ParsePublicKeyPEM([]byte("not pem")); err == nil {
		t.Fatal("garbage parsed as a key")
	}
}

// The export example in docs/audit-format.md must verify with its key.
func TestDocumentedExportVerifies(t *testing.T) {
	doc, err := os.ReadFile("../../docs/audit-format.md")
	check(t, err)
	var lines []string
	for _, l := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(l, `{"type":`) {
			lines = append(lines, l)
		}
	}
	rep, err := VerifyExport(strings.NewReader(strings.Join(lines, "\n")), testSigner(t, 1).PublicKey())
	check(t, err)
	wantProblem(t, rep, "", 0)
	if rep.Entries != 1 || rep.Checkpoints != 1 {
		t.Fatalf("report %+v", rep)
	}
}
