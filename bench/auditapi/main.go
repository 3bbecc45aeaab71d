// Command auditapi measures the admin API's audit listing: N entries in one
// tenant, read back a page of 100 at a time with a filter, over HTTPS, by
// an authenticated admin. It reports latency percentiles per request.
//
//	go run ./bench/auditapi [-entries 10000] [-rounds 10] [-db postgres://…]
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
)

func main() {
	entries := flag.Int("entries", 10000, "audit entries to list")
	rounds := flag.Int("rounds", 10, "times to list them all")
	dsn := flag.String("db", "", "database DSN (default: a fresh SQLite file)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the listing phase to this file")
	flag.Parse()
	ctx := context.Background()
	if *dsn == "" {
		dir, err := os.MkdirTemp("", "steward-bench-")
		check(err)
		defer os.RemoveAll(dir)
		*dsn = filepath.Join(dir, "bench.db")
	}
	st, err := sqlstore.Open(ctx, *dsn)
	check(err)
	defer st.Close()
	_, err = st.Migrate(ctx)
	check(err)

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := secrets.NewSealer(key)
	check(err)
	signer, err := audit.LoadOrCreateSigner(ctx, st, sealer)
	check(err)
	cfg := iam.DefaultConfig()
	cfg.RequireMFA = false
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := iam.New(st, sealer, cfg, iam.WithLogger(quiet))
	const email, pw = "bench@steward.test", "Orbit-Quartz-Meadow-77"
	owner, err := svc.BootstrapDirect(ctx, iam.BootstrapInput{Organisation: "Bench", Email: email, DisplayName: "Bench Owner", Password: pw})
	check(err)
	login, err := svc.Login(ctx, email, pw, store.SessionCLI, iam.Actor{Type: store.ActorAnonymous, SourceIP: "127.0.0.1"})
	check(err)

	// Fill the tenant's chain: half the entries match the filter.
	start := time.Now()
	const batch = 500
	for i := 0; i < *entries*2; i += batch {
		check(st.Tx(ctx, func(q store.Queries) error {
			recs := make([]audit.Record, 0, batch)
			for j := i; j < i+batch && j < *entries*2; j++ {
				action := "device.inventory"
				if j%2 == 0 {
					action = "tenant.update"
				}
				recs = append(recs, audit.Record{TenantID: owner.TenantID, ActorType: store.ActorAdmin, ActorID: owner.ID,
					Action: action, TargetType: "tenant", TargetID: owner.TenantID, Outcome: "success", SourceIP: "127.0.0.1"})
			}
			return audit.Append(ctx, q, recs...)
		}))
	}
	fmt.Printf("seeded %d entries (%d match the filter) in %s\n", *entries*2, *entries, time.Since(start).Round(time.Millisecond))

	srv := api.New(api.Options{Store: st, IAM: svc, Signer: signer, Logger: quiet})
	ts := httptest.NewTLSServer(srv.Handler())
	defer ts.Close()
	client := ts.Client()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	var lat []time.Duration
	for r := 0; r < *rounds; r++ {
		cursor, pages := "", 0
		for {
			url := ts.URL + "/api/v1/tenants/" + owner.TenantID + "/audit?action=tenant.*&limit=100"
			if cursor != "" {
				url += "&cursor=" + cursor
			}
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+login.Secret)
			t0 := time.Now()
			resp, err := client.Do(req)
			check(err)
			var page api.List[api.AuditEntryView]
			check(json.NewDecoder(resp.Body).Decode(&page))
			_, _ = io.Copy(io.Discard, resp.Body) // drain, so the connection is reused as a real client's would be
			resp.Body.Close()
			lat = append(lat, time.Since(t0))
			if resp.StatusCode != 200 {
				log.Fatalf("status %d", resp.StatusCode)
			}
			pages++
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if r == 0 {
			fmt.Printf("one listing = %d pages of up to 100\n", pages)
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	fmt.Printf("engine=%s requests=%d p50=%s p95=%s p99=%s max=%s (GOMAXPROCS=%d)\n", st.Engine(), len(lat),
		pct(.50).Round(time.Microsecond), pct(.95).Round(time.Microsecond), pct(.99).Round(time.Microsecond),
		lat[len(lat)-1].Round(time.Microsecond), runtime.GOMAXPROCS(0))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
