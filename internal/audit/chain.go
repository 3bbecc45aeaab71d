package audit

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"github.com/steward-mdm/steward/internal/store"
)

// Problem kinds a verification can report.
const (
	ProblemAltered            = "altered"             // an entry's contents do not match its hash
	ProblemRemoved            = "removed"             // a Seq is missing
	ProblemInserted           = "inserted"            // an entry that does not belong to the chain
	ProblemReordered          = "reordered"           // entries out of Seq order (exports only)
	ProblemCheckpointMismatch = "checkpoint_mismatch" // a signed checkpoint names another hash
	ProblemBadSignature       = "bad_signature"       // a checkpoint's signature does not verify
	ProblemTruncated          = "truncated"           // entries missing at the end
	ProblemBrokenBase         = "broken_base"         // the chain does not start at its archived base
)

// Problem is the first thing found wrong with a chain.
type Problem struct {
	Kind   string
	Seq    int64
	Detail string
}

// Report is the outcome of verifying one tenant's chain.
type Report struct {
	TenantID    string
	Entries     int64
	FirstSeq    int64
	LastSeq     int64
	Checkpoints int // checkpoints whose signature and hash were verified
	Problem     *Problem
}

// pendingDiagnosis marks a problem whose kind the next entries may refine:
// a gap that is later filled is a reordering, a bad entry followed by another
// with the same Seq is an insertion.
type pendingDiagnosis int

const (
	pendingNone pendingDiagnosis = iota
	pendingGap
	pendingDuplicate
)

// chainVerifier checks entries one at a time in the order they are read. It
// is shared by VerifyStore (entries come sorted from the database) and
// VerifyExport (entries come in file order, so reordering is possible).
type chainVerifier struct {
	report   Report
	pub      ed25519.PublicKey
	baseSeq  int64
	baseHash []byte
	expect   int64          // Seq the next entry must have
	prev     [HashSize]byte // hash the next entry must link to
	scratch  []byte

	pending    pendingDiagnosis
	gapEnd     int64 // pendingGap: the Seq that arrived too early
	pendingSeq int64 // pendingDuplicate: the Seq that may be claimed twice

	// keepHashes makes the verifier remember every verified hash, for
	// checkpoints that arrive after the entries (exports).
	keepHashes bool
	hashes     []byte
	// checkpointsAt lets the store verifier check checkpoints while
	// streaming, without remembering hashes.
	checkpointsAt map[int64]store.Checkpoint
	// adoptPrev makes the first entry's PrevHash the starting point: for a
	// segment verified in parallel, whose link to the previous segment is
	// checked when the segments are joined (firstPrev).
	adoptPrev bool
	firstPrev []byte
	segment   bool // its base is a cut, not an archived base
}

func newChainVerifier(tenantID string, pub ed25519.PublicKey, baseSeq int64, baseHash []byte) *chainVerifier {
	v := &chainVerifier{pub: pub, baseSeq: baseSeq, baseHash: baseHash, expect: baseSeq + 1, scratch: make([]byte, 0, 1024)}
	v.report.TenantID = tenantID
	if baseSeq < 0 {
		v.fail(ProblemBrokenBase, 0, fmt.Sprintf("base seq %d is negative", baseSeq))
	} else if baseSeq > 0 && len(baseHash) != HashSize {
		v.fail(ProblemBrokenBase, baseSeq+1, fmt.Sprintf("base hash at seq %d has %d bytes, want %d", baseSeq, len(baseHash), HashSize))
	} else if baseSeq > 0 {
		copy(v.prev[:], baseHash)
	}
	return v
}

// fail records p unless an earlier problem (by Seq) is already known.
func (v *chainVerifier) fail(kind string, seq int64, detail string) {
	if v.report.Problem != nil && v.report.Problem.Seq <= seq {
		return
	}
	v.report.Problem = &Problem{Kind: kind, Seq: seq, Detail: detail}
	v.pending = pendingNone
}

func (v *chainVerifier) failed() bool { return v.report.Problem != nil }

// lastVerified is the highest Seq whose hash has been verified.
func (v *chainVerifier) lastVerified() int64 { return v.expect - 1 }

// addEntry checks e against the chain so far.
func (v *chainVerifier) addEntry(e store.AuditEntry) {
	v.report.Entries++
	if v.report.FirstSeq == 0 || e.Seq < v.report.FirstSeq {
		v.report.FirstSeq = e.Seq
	}
	v.report.LastSeq = max(v.report.LastSeq, e.Seq)
	if v.failed() {
		v.refine(e)
		return
	}
	switch {
	case e.Seq > v.expect:
		v.fail(ProblemRemoved, v.expect, fmt.Sprintf("entries %d to %d are missing: the next entry present is %d", v.expect, e.Seq-1, e.Seq))
		v.pending, v.gapEnd = pendingGap, e.Seq
		return
	case e.Seq < v.expect:
		v.fail(ProblemInserted, e.Seq, fmt.Sprintf("a second entry claims seq %d", e.Seq))
		return
	}
	if v.adoptPrev && len(e.PrevHash) == HashSize {
		copy(v.prev[:], e.PrevHash)
		v.firstPrev = append([]byte(nil), e.PrevHash...)
	}
	v.adoptPrev = false
	sum := hashEntryInto(v.scratch, e)
	if !bytes.Equal(sum[:], e.Hash) {
		v.fail(ProblemAltered, e.Seq, fmt.Sprintf("entry %d's contents do not match its hash", e.Seq))
		v.pending, v.pendingSeq = pendingDuplicate, e.Seq
		return
	}
	if !bytes.Equal(e.PrevHash, v.prev[:]) {
		if e.Seq == v.baseSeq+1 && v.baseSeq > 0 && !v.segment {
			v.fail(ProblemBrokenBase, e.Seq, fmt.Sprintf("entry %d does not link to the archived base hash of seq %d", e.Seq, v.baseSeq))
			return
		}
		v.fail(ProblemInserted, e.Seq, fmt.Sprintf("entry %d does not link to entry %d (prev_hash differs): it was inserted or replaced, or entry %d was rewritten with a new hash", e.Seq, e.Seq-1, e.Seq-1))
		v.pending, v.pendingSeq = pendingDuplicate, e.Seq
		return
	}
	v.prev = sum
	v.expect++
	if v.keepHashes {
		v.hashes = append(v.hashes, sum[:]...)
	}
	if cp, ok := v.checkpointsAt[e.Seq]; ok {
		v.checkCheckpoint(cp)
	}
}

// refine sharpens a pending diagnosis with the entry that follows it.
func (v *chainVerifier) refine(e store.AuditEntry) {
	switch v.pending {
	case pendingGap:
		if e.Seq == v.report.Problem.Seq {
			v.report.Problem = &Problem{Kind: ProblemReordered, Seq: e.Seq,
				Detail: fmt.Sprintf("entry %d appears after entry %d", e.Seq, v.gapEnd)}
			v.pending = pendingNone
		}
	case pendingDuplicate:
		if e.Seq == v.pendingSeq {
			v.report.Problem = &Problem{Kind: ProblemInserted, Seq: e.Seq,
				Detail: fmt.Sprintf("two entries claim seq %d; the first of them does not belong to the chain", e.Seq)}
		}
		v.pending = pendingNone
	}
}

// hashAt returns the verified hash at seq, or nil when seq is outside what
// has been verified.
func (v *chainVerifier) hashAt(seq int64) []byte {
	if seq == v.baseSeq && seq > 0 {
		return v.baseHash
	}
	if seq == v.lastVerified() && seq > v.baseSeq {
		return v.prev[:]
	}
	if !v.keepHashes || seq <= v.baseSeq || seq > v.lastVerified() {
		return nil
	}
	i := (seq - v.baseSeq - 1) * HashSize
	return v.hashes[i : i+HashSize]
}

// checkCheckpoint verifies cp's signature and, when its Seq has been
// verified, that it names the same hash as the chain.
func (v *chainVerifier) checkCheckpoint(cp store.Checkpoint) {
	if cp.TenantID != v.report.TenantID {
		v.fail(ProblemCheckpointMismatch, cp.Seq, fmt.Sprintf("checkpoint at seq %d belongs to another tenant", cp.Seq))
		return
	}
	if !VerifyCheckpoint(v.pub, cp) {
		detail := fmt.Sprintf("checkpoint at seq %d does not verify with key %s", cp.Seq, KeyIDOf(v.pub))
		if cp.KeyID != KeyIDOf(v.pub) {
			detail += fmt.Sprintf(" (it names key %q)", cp.KeyID)
		}
		v.fail(ProblemBadSignature, cp.Seq, detail)
		return
	}
	if cp.Seq > v.lastVerified() && !v.failed() {
		v.fail(ProblemTruncated, v.lastVerified()+1, fmt.Sprintf("a checkpoint signed the chain at seq %d, but it ends at seq %d", cp.Seq, v.lastVerified()))
		return
	}
	want := v.hashAt(cp.Seq)
	if want == nil {
		return // before the base, or after an earlier problem: nothing to compare
	}
	if !bytes.Equal(want, cp.Hash) {
		if cp.Seq == v.baseSeq {
			v.fail(ProblemBrokenBase, cp.Seq, fmt.Sprintf("the base hash at seq %d differs from the one its checkpoint signed", cp.Seq))
			return
		}
		v.fail(ProblemCheckpointMismatch, cp.Seq, fmt.Sprintf("checkpoint at seq %d names another hash than the chain has there", cp.Seq))
		return
	}
	v.report.Checkpoints++
}

// requireAnchoredBase fails when an archived base has no signed checkpoint
// at it: otherwise whoever holds the data could rewrite the oldest entries
// and the base hash together.
func (v *chainVerifier) requireAnchoredBase(cps []store.Checkpoint) {
	if v.baseSeq == 0 {
		return
	}
	for _, cp := range cps {
		if cp.Seq == v.baseSeq {
			return
		}
	}
	v.fail(ProblemBrokenBase, v.baseSeq+1, fmt.Sprintf("no signed checkpoint anchors the archived base at seq %d", v.baseSeq))
}
