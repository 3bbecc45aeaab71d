package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// ErrEmptyChain means a tenant has no entries to checkpoint.
var ErrEmptyChain = errors.New("audit: the tenant's chain has no entries")

// checkpointLease elects the one node that makes checkpoints.
const checkpointLease = "audit.checkpoint"

// MakeCheckpoint signs the tenant's current head and stores the checkpoint.
// When the head is already checkpointed it returns that checkpoint instead.
// Checkpoints are not audit entries: signing one changes nothing.
func MakeCheckpoint(ctx context.Context, st store.Store, s *Signer, tenantID string, now time.Time) (store.Checkpoint, error) {
	cp, _, err := makeCheckpoint(ctx, st, s, tenantID, now)
	return cp, err
}

// makeCheckpoint also reports whether it stored a new checkpoint.
func makeCheckpoint(ctx context.Context, st store.Store, s *Signer, tenantID string, now time.Time) (store.Checkpoint, bool, error) {
	var (
		cp      store.Checkpoint
		created bool
	)
	err := st.Tx(ctx, func(q store.Queries) error {
		created = false
		// Head inside the Tx locks it: the hash signed is the hash stored.
		head, err := q.Audit().Head(ctx, tenantID)
		if err != nil {
			return fmt.Errorf("audit: reading chain head of tenant %s: %w", tenantID, err)
		}
		if head.Seq == 0 {
			return fmt.Errorf("%w (tenant %s)", ErrEmptyChain, tenantID)
		}
		cps, err := q.Audit().Checkpoints(ctx, tenantID)
		if err != nil {
			return fmt.Errorf("audit: reading checkpoints of tenant %s: %w", tenantID, err)
		}
		if n := len(cps); n > 0 && cps[n-1].Seq == head.Seq {
			cp = cps[n-1]
			return nil
		}
		cp = s.signCheckpoint(store.Checkpoint{TenantID: tenantID, Seq: head.Seq, Hash: head.Hash, Time: normaliseTime(now)})
		if err := q.Audit().AddCheckpoint(ctx, cp); err != nil {
			return fmt.Errorf("audit: storing checkpoint of tenant %s at seq %d: %w", tenantID, cp.Seq, err)
		}
		created = true
		return nil
	})
	return cp, created, err
}

// Checkpointer signs every tenant's head periodically. With several nodes on
// one database, a lease keeps the work to one of them at a time.
type Checkpointer struct {
	st       store.Store
	signer   *Signer
	holder   string
	interval time.Duration
	log      *slog.Logger
}

// NewCheckpointer returns a Checkpointer; holder names this node in leases.
func NewCheckpointer(st store.Store, signer *Signer, holder string, interval time.Duration, log *slog.Logger) *Checkpointer {
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	if log == nil {
		log = slog.Default()
	}
	return &Checkpointer{st: st, signer: signer, holder: holder, interval: interval, log: log}
}

// Run checkpoints every interval until ctx ends.
func (c *Checkpointer) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		if n, err := c.RunOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
			c.log.Warn("audit checkpointing failed", "error", err.Error())
		} else if n > 0 {
			c.log.Debug("audit checkpoints made", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce checkpoints every tenant whose head moved since its last
// checkpoint, if this node holds the lease, and returns how many it made.
// It goes on past a failing tenant and returns the first error.
func (c *Checkpointer) RunOnce(ctx context.Context, now time.Time) (int, error) {
	// The lease outlives one interval so that a slow round is not taken over
	// mid-way, and lapses soon after a node dies.
	ok, err := c.st.Read().Leases().TryAcquire(ctx, checkpointLease, c.holder, now, 2*c.interval)
	if err != nil || !ok {
		return 0, err
	}
	tenants, err := c.st.Read().Audit().Tenants(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit: listing tenants with a chain: %w", err)
	}
	made := 0
	var firstErr error
	for _, t := range tenants {
		if ctx.Err() != nil {
			return made, ctx.Err()
		}
		_, created, err := makeCheckpoint(ctx, c.st, c.signer, t, now)
		switch {
		case errors.Is(err, ErrEmptyChain):
		case err != nil && firstErr == nil:
			firstErr = err
		case created:
			made++
		}
	}
	return made, firstErr
}
