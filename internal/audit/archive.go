package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// archiveSink supplies where the archive of entries from..to goes. commit
// runs after everything is written and before anything is deleted: it must
// make the archive durable.
type archiveSink func(from, to int64) (w io.Writer, commit func() error, err error)

// Archive moves the tenant's entries older than before out of the database:
// it writes them to w as an export (VerifyExport checks it), then deletes
// them and moves the chain's base. It returns how many entries it archived;
// 0 with no error when nothing is old enough.
//
// It refuses to archive a chain that fails verification: deleting would
// destroy the evidence. The last archived entry gets a signed checkpoint that
// stays in the database and anchors the new base.
func Archive(ctx context.Context, st store.Store, s *Signer, tenantID string, before time.Time, w io.Writer) (int, error) {
	return archive(ctx, st, s, tenantID, before, func(int64, int64) (io.Writer, func() error, error) {
		return w, func() error { return nil }, nil
	})
}

func archive(ctx context.Context, st store.Store, s *Signer, tenantID string, before time.Time, sink archiveSink) (int, error) {
	aud := st.Read().Audit()
	head, err := aud.Head(ctx, tenantID)
	if err != nil {
		return 0, fmt.Errorf("audit: reading chain head of tenant %s: %w", tenantID, err)
	}
	through, err := aud.LastSeqBefore(ctx, tenantID, before)
	if err != nil {
		return 0, fmt.Errorf("audit: finding entries to archive for tenant %s: %w", tenantID, err)
	}
	if through <= head.BaseSeq {
		return 0, nil
	}
	// The live chain keeps a signed head after the old entries leave.
	if _, err := MakeCheckpoint(ctx, st, s, tenantID, time.Now()); err != nil {
		return 0, err
	}
	cps, err := aud.Checkpoints(ctx, tenantID)
	if err != nil {
		return 0, fmt.Errorf("audit: reading checkpoints of tenant %s: %w", tenantID, err)
	}
	anchor, err := verifiedAnchor(ctx, st, s, head, through, cps)
	if err != nil {
		return 0, err
	}
	if !hasCheckpointAt(cps, through) {
		if err := st.Tx(ctx, func(q store.Queries) error { return q.Audit().AddCheckpoint(ctx, anchor) }); err != nil {
			return 0, fmt.Errorf("audit: storing the archive checkpoint of tenant %s at seq %d: %w", tenantID, through, err)
		}
		cps = append(cps, anchor)
	}
	w, commit, err := sink(head.BaseSeq+1, through)
	if err != nil {
		return 0, err
	}
	x := newExportWriter(w)
	if err := writeExport(ctx, st, x, head, through, sortedCheckpoints(cps)); err != nil {
		return 0, err
	}
	if err := x.flush(); err != nil {
		return 0, fmt.Errorf("audit: writing the archive of tenant %s: %w", tenantID, err)
	}
	if x.n != through-head.BaseSeq {
		return 0, fmt.Errorf("audit: archive of tenant %s has %d entries, want %d; nothing deleted", tenantID, x.n, through-head.BaseSeq)
	}
	if err := commit(); err != nil {
		return 0, fmt.Errorf("audit: saving the archive of tenant %s: %w; nothing deleted", tenantID, err)
	}
	var deleted int
	err = st.Tx(ctx, func(q store.Queries) error {
		now, err := q.Audit().Head(ctx, tenantID)
		if err != nil {
			return err
		}
		if now.BaseSeq != head.BaseSeq {
			return fmt.Errorf("audit: another archive of tenant %s ran meanwhile: %w", tenantID, store.ErrConflict)
		}
		now.BaseSeq, now.BaseHash = through, anchor.Hash
		deleted, err = q.Audit().DeleteThrough(ctx, now, through)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("audit: deleting archived entries of tenant %s: %w", tenantID, err)
	}
	return deleted, nil
}

// verifiedAnchor verifies the chain from its base through seq and returns
// a signed checkpoint of the hash at through.
func verifiedAnchor(ctx context.Context, st store.Store, s *Signer, head store.AuditHead, through int64, cps []store.Checkpoint) (store.Checkpoint, error) {
	v := newChainVerifier(head.TenantID, s.PublicKey(), head.BaseSeq, head.BaseHash)
	v.checkpointsAt = make(map[int64]store.Checkpoint, len(cps))
	for _, cp := range cps {
		if cp.Seq == head.BaseSeq && cp.Seq > 0 {
			v.checkCheckpoint(cp)
		} else if cp.Seq > head.BaseSeq && cp.Seq <= through {
			v.checkpointsAt[cp.Seq] = cp
		}
	}
	v.requireAnchoredBase(cps)
	err := st.Read().Audit().Scan(ctx, head.TenantID, head.BaseSeq, func(e store.AuditEntry) error {
		if e.Seq > through {
			return errStopScan
		}
		v.addEntry(e)
		if v.failed() {
			return errStopScan
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return store.Checkpoint{}, fmt.Errorf("audit: reading entries of tenant %s: %w", head.TenantID, err)
	}
	if p := v.report.Problem; p != nil {
		return store.Checkpoint{}, fmt.Errorf("audit: refusing to archive tenant %s: chain fails verification (%s at seq %d: %s)", head.TenantID, p.Kind, p.Seq, p.Detail)
	}
	if v.lastVerified() != through {
		return store.Checkpoint{}, fmt.Errorf("audit: refusing to archive tenant %s: entries end at seq %d, want %d", head.TenantID, v.lastVerified(), through)
	}
	hash := append([]byte(nil), v.prev[:]...)
	return s.signCheckpoint(store.Checkpoint{TenantID: head.TenantID, Seq: through, Hash: hash, Time: normaliseTime(time.Now())}), nil
}

func hasCheckpointAt(cps []store.Checkpoint, seq int64) bool {
	for _, cp := range cps {
		if cp.Seq == seq {
			return true
		}
	}
	return false
}

func sortedCheckpoints(cps []store.Checkpoint) []store.Checkpoint {
	out := append([]store.Checkpoint(nil), cps...)
	slices.SortFunc(out, func(a, b store.Checkpoint) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}
