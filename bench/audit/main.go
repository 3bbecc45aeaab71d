// Command audit measures the audit log: (1) append throughput, with many
// goroutines each committing one entry per transaction, and (2) VerifyStore
// throughput over a long chain. Results and the command line that produced
// them live in bench/RESULTS.md.
//
//	go run ./bench/audit [-db postgres://…] [-workers 64] [-duration 5s] [-verify 200000]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
)

func main() {
	dsn := flag.String("db", "", "database DSN (default: a fresh SQLite file)")
	workers := flag.Int("workers", 64, "goroutines appending, one entry per transaction")
	duration := flag.Duration("duration", 5*time.Second, "how long to append")
	verifyN := flag.Int("verify", 200000, "entries in the chain to verify (0 skips)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	if *dsn == "" {
		dir, err := os.MkdirTemp("", "steward-bench-audit-")
		check(err)
		defer os.RemoveAll(dir)
		*dsn = filepath.Join(dir, "bench.db")
	}
	st, err := sqlstore.Open(ctx, *dsn)
	check(err)
	defer st.Close()
	_, err = st.Migrate(ctx)
	check(err)
	fmt.Printf("engine %s, GOMAXPROCS %d, %s\n", st.Engine(), runtime.GOMAXPROCS(0), runtime.Version())

	run := time.Now().UnixNano()
	appendTenant := fmt.Sprintf("bench-append-%d", run)
	n, elapsed := benchAppend(ctx, st, appendTenant, *workers, *duration)
	fmt.Printf("append: %d entries by %d goroutines in %s = %.0f entries/s\n", n, *workers, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	if *verifyN > 0 {
		verifyTenant := fmt.Sprintf("bench-verify-%d", run)
		seed(ctx, st, verifyTenant, *verifyN)
		key := make([]byte, secrets.KeySize)
		sealer, err := secrets.NewSealer(key)
		check(err)
		signer, err := audit.LoadOrCreateSigner(ctx, st, sealer)
		check(err)
		_, err = audit.MakeCheckpoint(ctx, st, signer, verifyTenant, time.Now())
		check(err)
		start := time.Now()
		rep, err := audit.VerifyStore(ctx, st, verifyTenant, signer.PublicKey())
		check(err)
		elapsed := time.Since(start)
		if rep.Problem != nil {
			log.Fatalf("verify found %+v", *rep.Problem)
		}
		fmt.Printf("verify: %d entries in %s = %.0f entries/s\n", rep.Entries, elapsed.Round(time.Millisecond), float64(rep.Entries)/elapsed.Seconds())
	}
}

// benchAppend runs workers goroutines, each committing one audit entry per
// transaction, for d; the chain is then verified to be gapless.
func benchAppend(ctx context.Context, st store.Store, tenant string, workers int, d time.Duration) (int64, time.Duration) {
	var count atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				err := st.Tx(ctx, func(q store.Queries) error { return audit.Append(ctx, q, record(tenant)) })
				check(err)
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	head, err := st.Read().Audit().Head(ctx, tenant)
	check(err)
	if head.Seq != count.Load() {
		log.Fatalf("head at seq %d after %d appends", head.Seq, count.Load())
	}
	return count.Load(), elapsed
}

func seed(ctx context.Context, st store.Store, tenant string, n int) {
	const batch = 2000
	start := time.Now()
	for i := 0; i < n; i += batch {
		recs := make([]audit.Record, 0, batch)
		for j := i; j < i+batch && j < n; j++ {
			recs = append(recs, record(tenant))
		}
		check(st.Tx(ctx, func(q store.Queries) error { return audit.Append(ctx, q, recs...) }))
	}
	fmt.Printf("seeded %d entries in %s\n", n, time.Since(start).Round(time.Millisecond))
}

func record(tenant string) audit.Record {
	return audit.Record{TenantID: tenant, ActorType: store.ActorDevice, ActorID: "0193b7c4-1111-7000-8000-000000000001",
		Action: "device.checkin", TargetType: "device", TargetID: "0193b7c4-1111-7000-8000-000000000001",
		Outcome: audit.OutcomeSuccess, SourceIP: "192.0.2.10", RequestID: "0193b7c4-2222-7000-8000-000000000001",
		Details: map[string]any{"battery": 81, "os": "17.1"}}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
