// Command audit measures the audit log: (1) append throughput, with many
// goroutines each committing one entry per transaction, and (2) VerifyStore
// throughput over a long chain. Results and the command line that produced
// them live in bench/RESULTS.md.
//
//	go run ./bench/audit [-db postgres://…] [-workers 64] [-tenants 1] [-duration 5s] [-verify 200000] [-rounds 3]
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
)

func main() {
	dsn := flag.String("db", "", "database DSN (default: a fresh SQLite file)")
	workers := flag.Int("workers", 64, "goroutines appending")
	perTx := flag.Int("per-tx", 1, "entries each transaction appends (a change that records several entries at once)")
	duration := flag.Duration("duration", 5*time.Second, "how long to append")
	verifyN := flag.Int("verify", 200000, "entries in the chain to verify (0 skips)")
	tenants := flag.Int("tenants", 1, "tenants the appends are spread over (each has its own chain and lock)")
	rounds := flag.Int("rounds", 3, "times to verify the chain")
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
	if strings.HasPrefix(*dsn, "postgres") {
		// A schema of its own, dropped at the end: the bench leaves a shared
		// database as it found it.
		var drop func()
		*dsn, drop = benchSchema(ctx, *dsn)
		defer drop()
	}
	st, err := sqlstore.Open(ctx, *dsn)
	check(err)
	defer st.Close()
	_, err = st.Migrate(ctx)
	check(err)
	fmt.Printf("engine %s, GOMAXPROCS %d, %s\n", st.Engine(), runtime.GOMAXPROCS(0), runtime.Version())

	run := time.Now().UnixNano()
	appendTenant := fmt.Sprintf("bench-append-%d", run)
	n, elapsed := benchAppend(ctx, st, appendTenant, *tenants, *workers, max(1, *perTx), *duration)
	fmt.Printf("append: %d entries by %d goroutines (%d per transaction) into %d tenant chains in %s = %.0f entries/s\n", n, *workers, max(1, *perTx), *tenants, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
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
		// The machine may be shared: report wall time and the CPU time this
		// process used, per round.
		for r := 0; r < *rounds; r++ {
			start, cpu0 := time.Now(), cpuTime()
			rep, err := audit.VerifyStore(ctx, st, verifyTenant, signer.PublicKey())
			check(err)
			elapsed, cpu := time.Since(start), cpuTime()-cpu0
			if rep.Problem != nil {
				log.Fatalf("verify found %+v", *rep.Problem)
			}
			fmt.Printf("verify: %d entries in %s = %.0f entries/s (process CPU %s = %.0f entries per CPU-second)\n", rep.Entries,
				elapsed.Round(time.Millisecond), float64(rep.Entries)/elapsed.Seconds(), cpu.Round(time.Millisecond), float64(rep.Entries)/cpu.Seconds())
		}
	}
}

// benchAppend runs workers goroutines, each committing perTx audit entries
// per transaction to one of the tenants' chains, for d; the chains are then
// checked to hold exactly the entries committed.
func benchAppend(ctx context.Context, st store.Store, prefix string, tenants, workers, perTx int, d time.Duration) (int64, time.Duration) {
	tenants = max(1, tenants)
	counts := make([]atomic.Int64, tenants)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := fmt.Sprintf("%s-%d", prefix, w%tenants)
			recs := make([]audit.Record, perTx)
			for time.Now().Before(deadline) {
				for i := range recs {
					recs[i] = record(tenant)
				}
				err := st.Tx(ctx, func(q store.Queries) error { return audit.Append(ctx, q, recs...) })
				check(err)
				counts[w%tenants].Add(int64(perTx))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var total int64
	for i := range counts {
		head, err := st.Read().Audit().Head(ctx, fmt.Sprintf("%s-%d", prefix, i))
		check(err)
		if head.Seq != counts[i].Load() {
			log.Fatalf("tenant %d: head at seq %d after %d appends", i, head.Seq, counts[i].Load())
		}
		total += head.Seq
	}
	return total, elapsed
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

// benchSchema creates a fresh schema and returns a DSN that uses it, and a
// function that drops it.
func benchSchema(ctx context.Context, dsn string) (string, func()) {
	admin, err := sql.Open("pgx", dsn)
	check(err)
	schema := fmt.Sprintf("steward_bench_audit_%d", time.Now().UnixNano())
	_, err = admin.ExecContext(ctx, "CREATE SCHEMA "+schema)
	check(err)
	u, err := url.Parse(dsn)
	check(err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			log.Printf("dropping schema %s: %v", schema, err)
		}
		admin.Close()
	}
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
