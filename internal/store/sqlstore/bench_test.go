package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// appendOne extends the tenant's chain by one entry, as internal/audit does.
func appendOne(ctx context.Context, q store.Queries, tenantID string, action string) error {
	head, err := q.Audit().Head(ctx, tenantID)
	if err != nil {
		return err
	}
	seq := head.Seq + 1
	hash := []byte(fmt.Sprintf("%032d", seq))
	e := store.AuditEntry{TenantID: tenantID, Seq: seq, Time: time.Now(), ActorType: store.ActorAdmin,
		ActorID: fmt.Sprint("admin-", seq%7), Action: action, TargetType: "admin", TargetID: fmt.Sprint(seq % 13),
		Outcome: "success", PrevHash: head.Hash, Hash: hash}
	return q.Audit().Append(ctx, store.AuditHead{TenantID: tenantID, Seq: seq, Hash: hash}, []store.AuditEntry{e})
}

// BenchmarkAuditAppendConcurrent measures single-entry audit transactions
// from 64 concurrent writers; tx/s is the figure group commit exists for.
func BenchmarkAuditAppendConcurrent(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			var st store.Store
			if engine == "sqlite" {
				st = storetest.OpenSQLite(b)
			} else {
				st = storetest.OpenPostgres(b)
			}
			ctx := context.Background()
			const writers = 64
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range writers {
				wg.Go(func() {
					tenant := fmt.Sprint("tenant-", w%8)
					for next.Add(1) <= int64(b.N) {
						if err := st.Tx(ctx, func(q store.Queries) error { return appendOne(ctx, q, tenant, "admin.update") }); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx/s")
		})
	}
}

// BenchmarkAuditListFiltered lists a 100-entry page with a filter over a
// 20,000-entry chain.
func BenchmarkAuditListFiltered(b *testing.B) {
	st := storetest.OpenSQLite(b)
	ctx := context.Background()
	actions := []string{"admin.create", "admin.update", "session.login", "tenant.update"}
	for i := 0; i < 20000; i += 500 {
		err := st.Tx(ctx, func(q store.Queries) error {
			for j := range 500 {
				if err := appendOne(ctx, q, "t1", actions[(i+j)%len(actions)]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	filters := map[string]store.AuditFilter{
		"action-prefix": {Action: "admin.*", Limit: 100},
		"actor-desc":    {ActorID: "admin-3", Descending: true, Limit: 100},
		"target":        {TargetType: "admin", TargetID: "5", Limit: 100},
		"since":         {Since: time.Now().Add(-time.Hour), Action: "session.login", Limit: 100},
	}
	for name, f := range filters {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				es, err := st.Read().Audit().List(ctx, "t1", f)
				if err != nil || len(es) != 100 {
					b.Fatalf("List: %d entries, %v", len(es), err)
				}
			}
		})
	}
}
