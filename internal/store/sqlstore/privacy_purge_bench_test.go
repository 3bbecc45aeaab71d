package sqlstore_test

import (
	"context"
	"flag"
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

var (
	purgeBenchDevices  = flag.Int("purge-devices", 2000, "BenchmarkPurgeDeprovisioned: retired devices")
	purgeBenchCommands = flag.Int("purge-commands", 150, "BenchmarkPurgeDeprovisioned: finished commands per device")
)

// seedRetiredFleet stores devices retired at retiredAt, each with its
// channel, a user channel, its enrolment, commands finished commands, a
// group membership and a compliance event: what a departed device leaves.
func seedRetiredFleet(b *testing.B, st store.Store, tenant string, devices, commands int, retiredAt time.Time) {
	ctx := context.Background()
	group := store.NewID()
	err := st.Tx(ctx, func(q store.Queries) error {
		if _, err := q.Tenants().Get(ctx, tenant); err == nil {
			return nil // seeded again after a purge
		}
		return q.Tenants().Create(ctx, store.Tenant{ID: tenant, Kind: store.TenantProvider, Name: tenant, Slug: tenant,
			CreatedAt: retiredAt, UpdatedAt: retiredAt})
	})
	if err != nil {
		b.Fatal(err)
	}
	err = st.Tx(ctx, func(q store.Queries) error {
		return q.Groups().Create(ctx, store.Group{ID: group, TenantID: tenant, Name: group, Kind: store.GroupStatic,
			CreatedBy: "bench", CreatedAt: retiredAt, UpdatedAt: retiredAt})
	})
	if err != nil {
		b.Fatal(err)
	}
	const perTx = 50
	for start := 0; start < devices; start += perTx {
		err := st.Tx(ctx, func(q store.Queries) error {
			var ids []string
			for i := start; i < min(start+perTx, devices); i++ {
				d := store.Device{ID: store.NewID(), TenantID: tenant, Ownership: "corporate", Platform: "ios",
					State: store.DeviceDeprovisioned, EnrolledAt: retiredAt, LastSeenAt: retiredAt, DeprovisionedAt: retiredAt,
					CreatedAt: retiredAt, UpdatedAt: retiredAt, Compliance: store.ComplianceUnknown}
				if err := q.Devices().Create(ctx, d); err != nil {
					return err
				}
				ids = append(ids, d.ID)
				enrolment := "enr-" + d.ID
				if err := q.Enrolments().Create(ctx, store.Enrolment{ID: enrolment, TenantID: tenant, Ownership: "corporate",
					NoticeVersion: 1, SecretHash: []byte(enrolment), State: store.EnrolmentUsed, CreatedBy: "bench", DeviceID: d.ID,
					CreatedAt: retiredAt, ExpiresAt: retiredAt, UsedAt: retiredAt}); err != nil {
					return err
				}
				if err := q.AppleChannels().Create(ctx, store.AppleChannel{DeviceID: d.ID, TenantID: tenant,
					CertFingerprint: []byte("fp-" + d.ID), CertNotAfter: retiredAt, EnrolmentID: enrolment,
					ChannelIndex: []byte("ix-" + d.ID), CreatedAt: retiredAt, UpdatedAt: retiredAt}); err != nil {
					return err
				}
				if _, err := q.AppleUserChannels().Open(ctx, store.AppleUserChannel{ID: store.NewID(), TenantID: tenant,
					DeviceID: d.ID, UserIndex: []byte("user"), AccountIndex: []byte("account"), UpdatedAt: retiredAt}); err != nil {
					return err
				}
				cmds := make([]store.Command, commands)
				for j := range cmds {
					cmds[j] = store.Command{ID: store.NewID(), TenantID: tenant, DeviceID: d.ID, RequestType: "ProfileList",
						Payload: []byte("p"), State: store.CommandCancelled, RequestedBy: "admin:bench", CreatedAt: retiredAt}
				}
				if err := q.Commands().Enqueue(ctx, cmds, commands+1); err != nil {
					return err
				}
				if err := q.Compliance().AppendEvent(ctx, store.ComplianceEvent{ID: store.NewID(), TenantID: tenant,
					DeviceID: d.ID, PolicyID: "policy", State: "compliant", At: retiredAt, ExpiresAt: retiredAt.Add(365 * 24 * time.Hour)}); err != nil {
					return err
				}
			}
			_, err := q.Groups().AddMembers(ctx, tenant, group, ids, retiredAt)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// analyse has PostgreSQL gather the statistics autovacuum would after a
// bulk load, so that the planner sees the fleet as it would in use.
func analyse(b *testing.B, st store.Store) {
	if db, ok := st.(*sqlstore.DB); ok && db.Engine() == "postgres" {
		if _, read := sqlstore.Pools(db); read != nil {
			if _, err := read.ExecContext(context.Background(), "ANALYZE"); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkPurgeDeprovisioned purges a retired fleet as the retention
// purger does: one transaction per PurgeDeprovisioned call of 2,000, until
// a call removes nothing. max-tx-ms is the longest the writer was held.
//
//	go test ./internal/store/sqlstore -run '^$' -bench PurgeDeprovisioned -benchtime 1x
func BenchmarkPurgeDeprovisioned(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			var st store.Store
			if engine == "sqlite" {
				st = storetest.OpenSQLite(b)
			} else {
				st = storetest.OpenPostgres(b)
			}
			ctx := context.Background()
			retired := time.Now().UTC().Add(-31 * 24 * time.Hour)
			var took []time.Duration
			rows, calls := 0, 0
			for b.Loop() {
				b.StopTimer()
				seedRetiredFleet(b, st, "bench-retired", *purgeBenchDevices, *purgeBenchCommands, retired)
				analyse(b, st)
				b.StartTimer()
				for {
					n := 0
					start := time.Now()
					err := st.Tx(ctx, func(q store.Queries) error {
						counts, err := q.Devices().PurgeDeprovisioned(ctx, retired.Add(time.Hour), 2000)
						n = 0
						for _, c := range counts {
							n += c.Rows
						}
						return err
					})
					took = append(took, time.Since(start))
					if err != nil {
						b.Fatal(err)
					}
					calls++
					rows += n
					if n == 0 {
						break
					}
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-tx-ms")
			b.ReportMetric(float64(calls)/float64(b.N), "tx/op")
			b.ReportMetric(float64(rows)/float64(b.N), "counted-rows/op")
		})
	}
}
