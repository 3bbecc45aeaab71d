package privacy

import (
	"context"
	"log/slog"
	"time"

	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

// Purger removes expired personal data in small batches, each its own short
// transaction, so device traffic is never held up behind it.
type Purger struct {
	Service *Service
	// Batch is the most rows one transaction deletes.
	Batch int
	// Pause between batches leaves the writer to device traffic.
	Pause time.Duration
	Log   *slog.Logger
}

// PurgeResult counts what one run removed, per tenant and category.
type PurgeResult struct {
	Rows    int
	Batches int
	ByKey   map[string]int // "tenant/category"
}

// RunOnce purges until nothing expired remains; every batch writes one audit
// entry per tenant with its counts per category, in the batch's transaction.
func (p *Purger) RunOnce(ctx context.Context) (PurgeResult, error) {
	res := PurgeResult{ByKey: map[string]int{}}
	batch := p.Batch
	if batch <= 0 {
		batch = 2000
	}
	s := p.Service
	steps := []func(q store.Queries, now time.Time) ([]store.PurgeCount, error){
		func(q store.Queries, now time.Time) ([]store.PurgeCount, error) {
			purged, err := q.Inventory().PurgeExpired(ctx, now, batch)
			if err != nil {
				return nil, err
			}
			// What device management derived from the values goes with
			// them, in the same transaction.
			return purged.Counts, s.reprojectDevices(ctx, q, purged.Devices)
		},
		func(q store.Queries, now time.Time) ([]store.PurgeCount, error) {
			return q.Access().PurgeBefore(ctx, now.Add(-AccessRecordRetention), batch)
		},
		func(q store.Queries, now time.Time) ([]store.PurgeCount, error) {
			return q.Notifications().PurgeBefore(ctx, now.Add(-NotificationRetention), batch)
		},
		func(q store.Queries, now time.Time) ([]store.PurgeCount, error) {
			return q.Reveals().PurgeExpired(ctx, now.Add(-day), batch)
		},
		func(q store.Queries, now time.Time) ([]store.PurgeCount, error) {
			return q.Approvals().PurgeBefore(ctx, now.Add(-ApprovalRetention), batch)
		},
		func(q store.Queries, now time.Time) ([]store.PurgeCount, error) {
			return s.eraseUnmanagedPeople(ctx, q, now, min(batch, unmanagedPeopleBatch))
		},
		func(q store.Queries, now time.Time) ([]store.PurgeCount, error) {
			return q.Devices().PurgeDeprovisioned(ctx, now.Add(-DeprovisionedDeviceRetention), batch)
		},
		func(q store.Queries, now time.Time) ([]store.PurgeCount, error) {
			return q.Commands().PurgeBefore(ctx, now.Add(-CommandResultRetention), batch)
		},
		func(q store.Queries, now time.Time) ([]store.PurgeCount, error) {
			return q.Actions().PurgeFinished(ctx, now.Add(-RemoteActionRetention), batch)
		},
		func(q store.Queries, now time.Time) ([]store.PurgeCount, error) {
			return q.DepartedPINs().PurgeExpired(ctx, now, batch)
		},
		func(q store.Queries, now time.Time) ([]store.PurgeCount, error) {
			return q.Enrolments().PurgeUnused(ctx, now.Add(-UnusedEnrolmentRetention), batch)
		},
	}
	for _, step := range steps {
		for {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			n := 0
			var removed []store.PurgeCount
			err := s.st.Tx(ctx, func(q store.Queries) error {
				counts, err := step(q, s.clock())
				if err != nil {
					return err
				}
				n, removed = 0, counts
				byTenant := map[string]map[string]int{}
				for _, c := range counts {
					n += c.Rows
					if byTenant[c.TenantID] == nil {
						byTenant[c.TenantID] = map[string]int{}
					}
					byTenant[c.TenantID][c.Category] += c.Rows
				}
				var recs []audit.Record
				for t, cats := range byTenant {
					e := iam.SystemActor.Entry(t, "privacy.retention.purge", "tenant", t, audit.OutcomeSuccess)
					details := map[string]any{}
					for c, k := range cats {
						details[c] = k
					}
					e.Details = map[string]any{"removed": details}
					recs = append(recs, e)
				}
				return audit.Append(ctx, q, recs...)
			})
			if err != nil {
				return res, err
			}
			if n == 0 {
				break
			}
			res.Rows += n
			res.Batches++
			for _, c := range removed {
				res.ByKey[c.TenantID+"/"+c.Category] += c.Rows
			}
			if p.Pause > 0 {
				select {
				case <-ctx.Done():
					return res, ctx.Err()
				case <-time.After(p.Pause):
				}
			}
		}
	}
	return res, nil
}

// Run purges every interval until ctx ends. Several nodes may run it: the
// deletes are idempotent and each batch is its own transaction.
func (p *Purger) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if res, err := p.RunOnce(ctx); err != nil && ctx.Err() == nil {
			p.Log.Error("retention purge failed", "err", err)
		} else if res.Rows > 0 {
			p.Log.Info("retention purge", "rows", res.Rows, "batches", res.Batches)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
