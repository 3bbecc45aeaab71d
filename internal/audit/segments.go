package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/steward-mdm/steward/internal/store"
)

// minSegment is the fewest entries worth a segment of its own: below it the
// extra query costs more than the parallelism gains. Tests lower it.
var minSegment int64 = 50_000

// verifySegments verifies entries after first.baseSeq through last. Reading
// rows costs far more than hashing them, so a long chain is cut into
// segments read and verified in parallel; each segment but the first adopts
// its first PrevHash, and the joins are checked afterwards. It returns a
// verifier positioned at the end of the chain, holding the merged report.
func verifySegments(ctx context.Context, aud store.AuditStore, first *chainVerifier, last int64) (*chainVerifier, error) {
	total := last - first.baseSeq
	n := int64(min(runtime.GOMAXPROCS(0), 4))
	if total/minSegment < n {
		n = max(1, total/minSegment)
	}
	segs := make([]*chainVerifier, n)
	ends := make([]int64, n)
	for i := range segs {
		ends[i] = first.baseSeq + total*int64(i+1)/n
		if i == 0 {
			segs[i] = first
			continue
		}
		// The zero base hash is a placeholder: adoptPrev replaces it.
		v := newChainVerifier(first.report.TenantID, first.pub, ends[i-1], genesisHash)
		v.adoptPrev, v.segment, v.checkpointsAt = true, true, first.checkpointsAt
		segs[i] = v
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, v := range segs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = scanSegment(ctx, aud, v, ends[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("audit: reading entries of tenant %s: %w", first.report.TenantID, err)
	}
	return joinSegments(segs, ends), nil
}

func scanSegment(ctx context.Context, aud store.AuditStore, v *chainVerifier, through int64) error {
	err := aud.Scan(ctx, v.report.TenantID, v.baseSeq, func(e store.AuditEntry) error {
		if e.Seq > through {
			return errStopScan
		}
		v.addEntry(e)
		if v.failed() {
			return errStopScan // sorted input: nothing later can refine it
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return err
	}
	return nil
}

// joinSegments checks that each segment ends where the next begins and
// merges their reports; the earliest problem wins.
func joinSegments(segs []*chainVerifier, ends []int64) *chainVerifier {
	last := segs[len(segs)-1]
	merged := segs[0].report
	for i, v := range segs[1:] {
		prev := segs[i]
		merged.Entries += v.report.Entries
		merged.Checkpoints += v.report.Checkpoints
		merged.LastSeq = max(merged.LastSeq, v.report.LastSeq)
		if merged.FirstSeq == 0 {
			merged.FirstSeq = v.report.FirstSeq
		}
		if p := prev.report.Problem; p == nil && prev.lastVerified() != ends[i] {
			seq := prev.lastVerified() + 1
			prev.report.Problem = &Problem{Kind: ProblemRemoved, Seq: seq, Detail: fmt.Sprintf("entries from %d are missing", seq)}
		} else if p == nil && v.firstPrev != nil && string(v.firstPrev) != string(prev.prev[:]) {
			seq := ends[i] + 1
			prev.report.Problem = &Problem{Kind: ProblemInserted, Seq: seq, Detail: fmt.Sprintf("entry %d does not link to entry %d (prev_hash differs): it was inserted or replaced, or entry %d was rewritten with a new hash", seq, seq-1, seq-1)}
		}
	}
	merged.Problem = nil
	for _, v := range segs {
		if p := v.report.Problem; p != nil && (merged.Problem == nil || p.Seq < merged.Problem.Seq) {
			merged.Problem = p
		}
	}
	last.report = merged
	return last
}
