package audit

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// The export is JSON Lines: one header, then entries by Seq, then
// checkpoints by Seq. docs/audit-format.md is the reference.
const (
	exportFormat  = "steward-audit-export"
	exportVersion = 1
	// exportTimeLayout always writes six fraction digits: the stored
	// precision, so a time read back is the time hashed.
	exportTimeLayout = "2006-01-02T15:04:05.000000Z07:00"
	// maxExportLine bounds one line; an entry is at most ~70 KiB.
	maxExportLine = 1 << 20
)

type exportHeaderLine struct {
	Type        string `json:"type"`
	Format      string `json:"format"`
	Version     int    `json:"version"`
	TenantID    string `json:"tenant_id"`
	ExportedAt  string `json:"exported_at"`
	BaseSeq     int64  `json:"base_seq"`
	BaseHash    string `json:"base_hash"`
	PublicKeyID string `json:"public_key_id"`
}

type exportEntryLine struct {
	Type       string          `json:"type"`
	TenantID   string          `json:"tenant_id"`
	Seq        int64           `json:"seq"`
	Time       string          `json:"time"`
	ActorType  string          `json:"actor_type"`
	ActorID    string          `json:"actor_id"`
	Action     string          `json:"action"`
	TargetType string          `json:"target_type"`
	TargetID   string          `json:"target_id"`
	Outcome    string          `json:"outcome"`
	SourceIP   string          `json:"source_ip"`
	RequestID  string          `json:"request_id"`
	Reason     string          `json:"reason"`
	Details    json.RawMessage `json:"details,omitempty"`
	PrevHash   string          `json:"prev_hash"`
	Hash       string          `json:"hash"`
}

type exportCheckpointLine struct {
	Type      string `json:"type"`
	TenantID  string `json:"tenant_id"`
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
	Time      string `json:"time"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"`
}

// exportAnyLine reads any of the three lines: their field names agree where
// they overlap. Details stays raw so its bytes are the bytes hashed.
type exportAnyLine struct {
	exportEntryLine
	Format      string `json:"format"`
	Version     int    `json:"version"`
	ExportedAt  string `json:"exported_at"`
	BaseSeq     int64  `json:"base_seq"`
	BaseHash    string `json:"base_hash"`
	PublicKeyID string `json:"public_key_id"`
	KeyID       string `json:"key_id"`
	Signature   string `json:"signature"`
}

// exportWriter writes the lines of one export.
type exportWriter struct {
	bw  *bufio.Writer
	enc *json.Encoder
	n   int64 // entries written
}

func newExportWriter(w io.Writer) *exportWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &exportWriter{bw: bw, enc: enc}
}

func (x *exportWriter) header(tenantID string, exportedAt time.Time, baseSeq int64, baseHash []byte, keyID string) error {
	return x.enc.Encode(exportHeaderLine{Type: "header", Format: exportFormat, Version: exportVersion, TenantID: tenantID,
		ExportedAt: normaliseTime(exportedAt).Format(exportTimeLayout), BaseSeq: baseSeq, BaseHash: hex.EncodeToString(baseHash), PublicKeyID: keyID})
}

func (x *exportWriter) entry(e store.AuditEntry) error {
	x.n++
	return x.enc.Encode(exportEntryLine{Type: "entry", TenantID: e.TenantID, Seq: e.Seq, Time: e.Time.UTC().Format(exportTimeLayout),
		ActorType: string(e.ActorType), ActorID: e.ActorID, Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID,
		Outcome: e.Outcome, SourceIP: e.SourceIP, RequestID: e.RequestID, Reason: e.Reason, Details: e.Details,
		PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)})
}

func (x *exportWriter) checkpoint(c store.Checkpoint) error {
	return x.enc.Encode(exportCheckpointLine{Type: "checkpoint", TenantID: c.TenantID, Seq: c.Seq, Hash: hex.EncodeToString(c.Hash),
		Time: c.Time.UTC().Format(exportTimeLayout), KeyID: c.KeyID, Signature: hex.EncodeToString(c.Signature)})
}

func (x *exportWriter) flush() error { return x.bw.Flush() }

// entryFromLine converts an entry line back; errors name what is malformed.
func entryFromLine(l *exportAnyLine) (store.AuditEntry, error) {
	t, err := parseExportTime(l.Time)
	if err != nil {
		return store.AuditEntry{}, err
	}
	prev, err := hex.DecodeString(l.PrevHash)
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("prev_hash is not hex: %w", err)
	}
	hash, err := hex.DecodeString(l.exportEntryLine.Hash)
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("hash is not hex: %w", err)
	}
	var details json.RawMessage
	if len(l.Details) > 0 {
		details = append(json.RawMessage(nil), l.Details...)
	}
	return store.AuditEntry{TenantID: l.TenantID, Seq: l.Seq, Time: t, ActorType: store.ActorType(l.ActorType), ActorID: l.ActorID,
		Action: l.Action, TargetType: l.TargetType, TargetID: l.TargetID, Outcome: l.Outcome, SourceIP: l.SourceIP,
		RequestID: l.RequestID, Reason: l.Reason, Details: details, PrevHash: prev, Hash: hash}, nil
}

func checkpointFromLine(l *exportAnyLine) (store.Checkpoint, error) {
	t, err := parseExportTime(l.Time)
	if err != nil {
		return store.Checkpoint{}, err
	}
	hash, err := hex.DecodeString(l.exportEntryLine.Hash)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("hash is not hex: %w", err)
	}
	sig, err := hex.DecodeString(l.Signature)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("signature is not hex: %w", err)
	}
	return store.Checkpoint{TenantID: l.TenantID, Seq: l.Seq, Hash: hash, Time: t, KeyID: l.KeyID, Signature: sig}, nil
}

func parseExportTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339", s)
	}
	return t.UTC(), nil
}
