// Command privacy measures the privacy core's costs on a real store:
//
//	gate      ingest throughput of an inventory with 500 apps, gate on vs off
//	erase     time to erase a person with 10 devices
//	purge     retention purge rate while device check-ins run, with their p99
//
// go run ./bench/privacy [-db postgres://...] [-only gate|erase|purge]
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
)

var (
	dsn     = flag.String("db", "", "database DSN (default: a fresh SQLite file in a temp dir)")
	only    = flag.String("only", "", "run one benchmark: gate, erase or purge")
	devices = flag.Int("devices", 200, "devices for the gate benchmark")
	rounds  = flag.Int("rounds", 5, "inventory reports per device (gate)")
	workers = flag.Int("workers", 8, "concurrent ingesters (gate) / check-in clients (purge)")
	rows    = flag.Int("rows", 300000, "expired rows to purge (purge)")
	batch   = flag.Int("batch", 2000, "rows per purge transaction (purge)")
	pause   = flag.Duration("pause", 5*time.Millisecond, "pause between purge batches (purge)")
)

type bench struct {
	ctx    context.Context
	st     store.Store
	svc    *privacy.Service
	tenant string
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	fmt.Printf("machine: %d CPUs, %s/%s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	for _, name := range []string{"gate", "erase", "purge"} {
		if *only != "" && *only != name {
			continue
		}
		b := setup()
		switch name {
		case "gate":
			b.gate()
		case "erase":
			b.erase()
		case "purge":
			b.purge()
		}
		b.st.Close()
	}
}

func setup() *bench {
	ctx := context.Background()
	target := *dsn
	if target == "" {
		dir, err := os.MkdirTemp("", "steward-privacy-bench")
		if err != nil {
			log.Fatal(err)
		}
		target = filepath.Join(dir, "steward.db")
	}
	db, err := sqlstore.Open(ctx, target)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, _ := secrets.NewSealer(key)
	signer, err := audit.LoadOrCreateSigner(ctx, db, sealer)
	if err != nil {
		log.Fatal(err)
	}
	b := &bench{ctx: ctx, st: db, svc: privacy.NewService(db, keys.New(sealer), signer, nil), tenant: store.NewID()}
	now := time.Now().UTC()
	must(db.Tx(ctx, func(q store.Queries) error {
		return q.Tenants().Create(ctx, store.Tenant{ID: b.tenant, Kind: store.TenantProvider, Name: "Bench", Slug: "bench-" + b.tenant[len(b.tenant)-8:], CreatedAt: now, UpdatedAt: now})
	}))
	return b
}

var actor = iam.Actor{Type: store.ActorAdmin, ID: "bench"}

func (b *bench) person(i int) store.Subject {
	s, err := b.svc.CreateSubject(b.ctx, b.tenant, privacy.SubjectInput{Email: fmt.Sprintf("person%d-%s@bench.test", i, b.tenant[len(b.tenant)-6:])}, actor)
	must(err)
	return s
}

func (b *bench) device(subject string, o privacy.Ownership) store.Device {
	d, err := b.svc.RegisterDevice(b.ctx, b.tenant, privacy.DeviceInput{SubjectID: subject, Ownership: string(o), Platform: "macos"}, actor)
	must(err)
	return d
}

// inventory is a full DeviceInformation plus an app list of n apps; round
// changes one app's version so every report stores a new app list.
func inventory(tenant, device string, n, round int) privacy.Report {
	apps := make([]privacy.App, n)
	for i := range apps {
		apps[i] = privacy.App{ID: fmt.Sprintf("com.vendor%03d.app%03d", i%97, i), Name: fmt.Sprintf("Application %d", i), Version: "1.2.3", Managed: i%5 == 0}
	}
	apps[round%n].Version = fmt.Sprintf("2.%d", round)
	return privacy.Report{TenantID: tenant, DeviceID: device, Values: []privacy.Observation{
		{Field: "device.serial_number", Value: "C02" + device[len(device)-9:]},
		{Field: "device.udid", Value: device},
		{Field: "device.name", Value: "Workstation " + device[:8]},
		{Field: "hardware.model", Value: "MacBook Pro"},
		{Field: "hardware.capacity_gb", Value: 512},
		{Field: "hardware.available_gb", Value: 100 + round},
		{Field: "os.name", Value: "macOS"},
		{Field: "os.version", Value: "15.1"},
		{Field: "os.build", Value: "24B83"},
		{Field: "network.wifi_mac", Value: "a4:83:e7:00:00:01"},
		{Field: "network.bluetooth_mac", Value: "a4:83:e7:00:00:02"},
		{Field: "security.passcode_present", Value: true},
		{Field: "security.encrypted", Value: true},
		{Field: "security.firewall_enabled", Value: true},
		{Field: "apps.installed", Value: apps},
	}}
}

func (b *bench) gate() {
	var ids []string
	for i := 0; i < *devices; i++ {
		ids = append(ids, b.device(b.person(i).ID, privacy.Corporate).ID)
	}
	var runs atomic.Int64
	run := func(disabled bool) float64 {
		defer runs.Add(1)
		b.svc.Gate().Disabled = disabled
		var next atomic.Int64
		total := int64(len(ids) * *rounds)
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < *workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= total {
						return
					}
					round := int(i)/len(ids) + int(runs.Add(0))*100
					if _, err := b.svc.Ingest(b.ctx, inventory(b.tenant, ids[int(i)%len(ids)], 500, round)); err != nil {
						log.Fatal(err)
					}
				}
			}()
		}
		wg.Wait()
		return float64(total) / time.Since(start).Seconds()
	}
	run(true) // warm up caches and tables
	// Alternate so that the database growing over the runs hurts both sides alike.
	var off, on []float64
	for i := 0; i < 3; i++ {
		off = append(off, run(true))
		on = append(on, run(false))
	}
	mean := func(xs []float64) float64 {
		sum := 0.0
		for _, x := range xs {
			sum += x
		}
		return sum / float64(len(xs))
	}
	fmt.Printf("gate: %s, %d devices x %d reports of 15 fields + 500 apps, %d workers, 3 alternating runs each\n", b.st.Engine(), len(ids), *rounds, *workers)
	fmt.Printf("  gate off: %.0f reports/s %v\n  gate on:  %.0f reports/s %v\n  cost: %.1f%% (target <= 15%%)\n",
		mean(off), rounded(off), mean(on), rounded(on), 100*(mean(off)-mean(on))/mean(off))
}

func rounded(xs []float64) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x)
	}
	return out
}

func (b *bench) erase() {
	var times []time.Duration
	for p := 0; p < 20; p++ {
		s := b.person(p)
		for i := 0; i < 10; i++ {
			d := b.device(s.ID, privacy.Corporate)
			for r := 0; r < 3; r++ {
				_, err := b.svc.Ingest(b.ctx, inventory(b.tenant, d.ID, 100, r))
				must(err)
			}
		}
		start := time.Now()
		_, err := b.svc.EraseSubject(b.ctx, b.tenant, s.ID, "benchmark erasure request", actor)
		must(err)
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	fmt.Printf("erase: %s, person with 10 devices (3 reports each, 100 apps): median %v, max %v (target < 200ms)\n",
		b.st.Engine(), times[len(times)/2].Round(time.Microsecond), times[len(times)-1].Round(time.Microsecond))
}

func (b *bench) purge() {
	// Devices that keep checking in during the purge.
	var live []string
	for i := 0; i < 200; i++ {
		live = append(live, b.device("", privacy.Corporate).ID)
	}
	// Expired history rows, written directly in large transactions.
	old := b.device("", privacy.Corporate)
	past := time.Now().UTC().Add(-90 * 24 * time.Hour)
	const perTx = 5000
	for done := 0; done < *rows; done += perTx {
		hist := make([]store.InventoryValue, 0, perTx)
		for i := 0; i < perTx && done+i < *rows; i++ {
			hist = append(hist, store.InventoryValue{ID: store.NewID(), TenantID: b.tenant, DeviceID: old.ID, Field: "os.version", Category: "os",
				Value: []byte(`"14.0"`), CollectedAt: past, ExpiresAt: past.Add(30 * 24 * time.Hour)})
		}
		must(b.st.Tx(b.ctx, func(q store.Queries) error { return q.Inventory().Put(b.ctx, nil, hist) }))
	}
	ctx, stop := context.WithCancel(b.ctx)
	var lat []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i += *workers {
				start := time.Now()
				_, err := b.svc.Ingest(b.ctx, privacy.Report{TenantID: b.tenant, DeviceID: live[i%len(live)], Values: []privacy.Observation{
					{Field: "os.version", Value: "15.1"}, {Field: "hardware.battery_level", Value: i % 100}, {Field: "security.passcode_present", Value: true}}})
				must(err)
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
			}
		}(w)
	}
	time.Sleep(500 * time.Millisecond) // check-ins at steady state first
	p := &privacy.Purger{Service: b.svc, Batch: *batch, Pause: *pause}
	start := time.Now()
	res, err := p.RunOnce(b.ctx)
	must(err)
	elapsed := time.Since(start)
	stop()
	wg.Wait()
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	fmt.Printf("purge: %s, %d expired rows in batches of %d, pause %v: %v, %.0f rows/s (target >= 50,000)\n", b.st.Engine(), res.Rows, p.Batch, p.Pause, elapsed.Round(time.Millisecond), float64(res.Rows)/elapsed.Seconds())
	fmt.Printf("  concurrent check-ins (%d clients): %d done, p50 %v, p99 %v (target < 50ms)\n", *workers, len(lat),
		lat[len(lat)/2].Round(time.Microsecond), p99.Round(time.Microsecond))
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
