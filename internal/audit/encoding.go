// Package audit keeps Steward's tamper-evident audit log: one hash chain per
// tenant, appended in the same transaction as the change it records, signed
// checkpoints (ed25519), offline-verifiable exports and archiving.
//
// The byte formats here are a public contract: docs/audit-format.md describes
// them so that a third party can verify a chain without Steward's code.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// entryEncodingVersion is the first byte of every canonical entry encoding.
// A new version is a new constant, never a changed meaning of this one.
const entryEncodingVersion byte = 1

// checkpointDomain separates checkpoint signatures from any other use of the
// signing key: a signature over an entry can never pass as a checkpoint.
const checkpointDomain = "steward-audit-checkpoint-v1"

// HashSize is the length of entry hashes (SHA-256).
const HashSize = sha256.Size

// genesisHash is PrevHash of a tenant's first entry.
var genesisHash = make([]byte, HashSize)

// HashEntry returns SHA-256 of e's canonical encoding. e.Hash is ignored;
// every other field, PrevHash included, is covered.
func HashEntry(e store.AuditEntry) []byte {
	sum := hashEntryInto(nil, e)
	return sum[:]
}

// hashEntryInto hashes e using buf as scratch space and returns the sum; the
// verifier reuses one buffer so that checking a million entries does not
// allocate a million encodings.
func hashEntryInto(buf []byte, e store.AuditEntry) [HashSize]byte {
	return sha256.Sum256(appendCanonicalEntry(buf[:0], e))
}

// appendCanonicalEntry appends the version byte then each field, each
// preceded by its length as a uvarint, in a fixed order.
func appendCanonicalEntry(b []byte, e store.AuditEntry) []byte {
	b = append(b, entryEncodingVersion)
	b = appendField(b, []byte(e.TenantID))
	b = appendInt64Field(b, e.Seq)
	b = appendInt64Field(b, e.Time.UnixMicro())
	b = appendStringField(b, string(e.ActorType))
	b = appendStringField(b, e.ActorID)
	b = appendStringField(b, e.Action)
	b = appendStringField(b, e.TargetType)
	b = appendStringField(b, e.TargetID)
	b = appendStringField(b, e.Outcome)
	b = appendStringField(b, e.SourceIP)
	b = appendStringField(b, e.RequestID)
	b = appendStringField(b, e.Reason)
	b = appendField(b, e.Details)
	b = appendField(b, e.PrevHash)
	return b
}

// CheckpointMessage is the exact byte string a checkpoint signature covers.
func CheckpointMessage(c store.Checkpoint) []byte {
	b := make([]byte, 0, 64+len(c.TenantID)+len(c.Hash))
	b = appendStringField(b, checkpointDomain)
	b = appendStringField(b, c.TenantID)
	b = appendInt64Field(b, c.Seq)
	b = appendField(b, c.Hash)
	b = appendInt64Field(b, c.Time.UnixMicro())
	return b
}

func appendField(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendStringField(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendInt64Field writes v as 8 bytes big-endian (two's complement), with
// its length (8) in front like every other field.
func appendInt64Field(b []byte, v int64) []byte {
	b = binary.AppendUvarint(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

// normaliseTime is the precision and zone every stored time has.
func normaliseTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
