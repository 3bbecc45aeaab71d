package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/steward-mdm/steward/internal/store"
)

// errStopScan ends a Scan early; it never leaves this package.
var errStopScan = errors.New("audit: stop scan")

// VerifyStore recomputes a tenant's chain from the database and checks it
// against its head and every signed checkpoint. A Report with a nil Problem
// means the chain is intact; err is for failures to read it at all.
//
// Entries appended while it runs are ignored (it stops at the head it read
// first). An archive that runs meanwhile moves the base; VerifyStore then
// starts again once.
func VerifyStore(ctx context.Context, st store.Store, tenantID string, pub ed25519.PublicKey) (Report, error) {
	rep, baseMoved, err := verifyStoreOnce(ctx, st, tenantID, pub)
	if err == nil && baseMoved {
		rep, _, err = verifyStoreOnce(ctx, st, tenantID, pub)
	}
	return rep, err
}

func verifyStoreOnce(ctx context.Context, st store.Store, tenantID string, pub ed25519.PublicKey) (Report, bool, error) {
	aud := st.Read().Audit()
	// Checkpoints before the head: a checkpoint can never legitimately name
	// a Seq beyond a head read after it.
	cps, err := aud.Checkpoints(ctx, tenantID)
	if err != nil {
		return Report{}, false, fmt.Errorf("audit: reading checkpoints of tenant %s: %w", tenantID, err)
	}
	head, err := aud.Head(ctx, tenantID)
	if err != nil {
		return Report{}, false, fmt.Errorf("audit: reading chain head of tenant %s: %w", tenantID, err)
	}
	v := newChainVerifier(tenantID, pub, head.BaseSeq, head.BaseHash)
	v.checkpointsAt = make(map[int64]store.Checkpoint, len(cps))
	for _, cp := range cps {
		if cp.Seq > head.BaseSeq && cp.Seq <= head.Seq {
			v.checkpointsAt[cp.Seq] = cp
		} else if cp.Seq == head.BaseSeq && head.BaseSeq > 0 {
			v.checkCheckpoint(cp)
		}
	}
	v.requireAnchoredBase(cps)
	if !v.failed() {
		if v, err = verifySegments(ctx, aud, v, head.Seq); err != nil {
			return Report{}, false, err
		}
	}
	// An archive that ran meanwhile deletes entries under our feet; that is
	// not tampering, so read again from the new base.
	if v.report.Problem != nil {
		if now, err := aud.Head(ctx, tenantID); err == nil && now.BaseSeq != head.BaseSeq {
			return v.report, true, nil
		}
	}
	for _, cp := range cps {
		if cp.Seq > head.Seq {
			v.checkCheckpoint(cp)
		}
	}
	checkHead(v, head)
	return v.report, false, nil
}

// checkHead compares the head the database keeps with the chain as read.
func checkHead(v *chainVerifier, head store.AuditHead) {
	if v.failed() {
		return
	}
	last := v.lastVerified()
	switch {
	case head.Seq > last:
		v.fail(ProblemTruncated, last+1, fmt.Sprintf("the head says the chain ends at seq %d, but the entries end at seq %d", head.Seq, last))
	case head.Seq > 0 && string(head.Hash) != string(v.prev[:]):
		v.fail(ProblemAltered, head.Seq, fmt.Sprintf("the head's hash differs from the hash of entry %d", head.Seq))
	}
}

// VerifyAll verifies every tenant that has a chain.
func VerifyAll(ctx context.Context, st store.Store, pub ed25519.PublicKey) ([]Report, error) {
	tenants, err := st.Read().Audit().Tenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: listing tenants with a chain: %w", err)
	}
	reports := make([]Report, 0, len(tenants))
	for _, t := range tenants {
		rep, err := VerifyStore(ctx, st, t, pub)
		if err != nil {
			return reports, err
		}
		reports = append(reports, rep)
	}
	return reports, nil
}
