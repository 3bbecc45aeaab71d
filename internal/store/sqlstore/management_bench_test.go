package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// searchFleet is the benchmark's data: two tenants of n devices each, with
// two groups in the first (a quarter and a tenth of its devices).
type searchFleet struct {
	tenant, quarter, tenth string
	now                    time.Time
}

func seedFleet(b *testing.B, st store.Store, n int) searchFleet {
	ctx := context.Background()
	f := searchFleet{tenant: "bench-a", quarter: store.NewID(), tenth: store.NewID(), now: time.Now().UTC()}
	platforms := []string{"ios", "macos", "ipados"}
	compliance := []string{store.ComplianceUnknown, store.ComplianceCompliant, store.ComplianceNoncompliant}
	for _, tenant := range []string{f.tenant, "bench-b"} {
		var quarter, tenth []string
		for start := 0; start < n; start += 1000 {
			err := st.Tx(ctx, func(q store.Queries) error {
				for i := start; i < min(start+1000, n); i++ {
					d := store.Device{ID: store.NewID(), TenantID: tenant, Ownership: []string{"corporate", "byod"}[i%2],
						Platform: platforms[i%3], State: store.DeviceEnrolled, EnrolledAt: f.now.Add(-time.Duration(i) * time.Minute),
						LastSeenAt: f.now.Add(-time.Duration(i*7919%(90*24)) * time.Hour), CreatedAt: f.now, UpdatedAt: f.now}
					if err := q.Devices().Create(ctx, d); err != nil {
						return err
					}
					major, minor := 14+i%4, i%7
					if err := q.ManagedDevices().SetProjection(ctx, store.DeviceProjection{TenantID: tenant, DeviceID: d.ID,
						OSVersion: fmt.Sprintf("%d.%d", major, minor), OSVersionKey: fmt.Sprintf("%03d.%03d.000", major, minor),
						Model: fmt.Sprintf("Model%02d,%d", i%20, i%3), Facts: []byte(`{"os.version":"17.4"}`)}); err != nil {
						return err
					}
					if c := compliance[(i/3)%3]; c != store.ComplianceUnknown {
						if err := q.ManagedDevices().SetCompliance(ctx, tenant, d.ID, c, f.now); err != nil {
							return err
						}
					}
					if i%4 == 0 {
						quarter = append(quarter, d.ID)
					}
					if i%10 == 3 {
						tenth = append(tenth, d.ID)
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		if tenant != f.tenant {
			continue // the other tenant's devices are there to be filtered out
		}
		err := st.Tx(ctx, func(q store.Queries) error {
			for _, g := range []struct {
				id      string
				members []string
			}{{f.quarter, quarter}, {f.tenth, tenth}} {
				if err := q.Groups().Create(ctx, store.Group{ID: g.id, TenantID: tenant, Name: g.id, Kind: store.GroupStatic,
					CreatedBy: "bench", CreatedAt: f.now, UpdatedAt: f.now}); err != nil {
					return err
				}
				if _, err := q.Groups().AddMembers(ctx, tenant, g.id, g.members, f.now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	// On PostgreSQL autovacuum analyses a table after a bulk load; do it
	// now so the planner sees the fleet's statistics, as it would in use.
	if db, ok := st.(*sqlstore.DB); ok && db.Engine() == "postgres" {
		if _, read := sqlstore.Pools(db); read != nil {
			if _, err := read.ExecContext(ctx, "ANALYZE"); err != nil {
				b.Fatal(err)
			}
		}
	}
	return f
}

// BenchmarkDeviceSearch pages through 10,000 devices of one tenant (next to
// another tenant's 10,000) with two filters; p99-ms is the figure to watch.
//
//	STEWARD_TEST_POSTGRES_DSN=postgres://… go test ./internal/store/sqlstore -run '^$' -bench DeviceSearch -benchtime 500x
func BenchmarkDeviceSearch(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			var st store.Store
			if engine == "sqlite" {
				st = storetest.OpenSQLite(b)
			} else {
				st = storetest.OpenPostgres(b)
			}
			f := seedFleet(b, st, 10000)
			ctx := context.Background()
			queries := []struct {
				name string
				q    store.DeviceQuery
			}{
				{"platform+compliance", store.DeviceQuery{Platform: "ios", Compliance: store.ComplianceNoncompliant}},
				{"ownership+seen-before", store.DeviceQuery{Ownership: "byod", LastSeenBefore: f.now.Add(-30 * 24 * time.Hour),
					Sort: store.SortByLastSeen}},
				{"group+sort-last-seen", store.DeviceQuery{GroupID: f.quarter, Sort: store.SortByLastSeen, Descending: true}},
				{"scope+sort-model", store.DeviceQuery{Scope: []string{f.quarter, f.tenth}, Platform: "macos", Sort: store.SortByModel}},
				{"os-range+sort-os", store.DeviceQuery{OSVersionMin: "015.000.000", OSVersionMax: "016.999.999",
					Compliance: store.ComplianceCompliant, Sort: store.SortByOSVersion, Descending: true}},
			}
			for _, bq := range queries {
				b.Run(bq.name, func(b *testing.B) {
					bq.q.Limit = 100
					var took []time.Duration
					q := bq.q
					for b.Loop() {
						start := time.Now()
						page, err := st.Read().ManagedDevices().Search(ctx, f.tenant, q)
						took = append(took, time.Since(start))
						if err != nil || len(page.Devices) == 0 {
							b.Fatalf("Search: %d devices, %v", len(page.Devices), err)
						}
						q.After = page.Next // walk every page, then start over
					}
					reportLatency(b, took)
				})
			}
			b.Run("projections", func(b *testing.B) {
				var took []time.Duration
				for b.Loop() {
					start := time.Now()
					ps, err := st.Read().ManagedDevices().Projections(ctx, f.tenant, store.DeviceEnrolled)
					took = append(took, time.Since(start))
					if err != nil || len(ps) != 10000 {
						b.Fatalf("Projections: %d, %v", len(ps), err)
					}
				}
				reportLatency(b, took)
			})
		})
	}
}

// reportLatency adds the median and 99th percentile of took, in ms.
func reportLatency(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
	b.ReportMetric(ms(took[min(len(took)-1, len(took)*99/100)]), "p99-ms")
}
