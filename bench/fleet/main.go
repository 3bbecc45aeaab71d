// Command fleet measures device management on a seeded fleet, wired as the
// server wires it (fleet.Wire over the privacy core and the MDM service):
//
//	groups      re-evaluating a dynamic group over every device (target < 1 s
//	            for 10,000), for a rule over projected facts and for one that
//	            reads the encrypted app lists
//	compliance  EvaluateTenant throughput (target >= 5,000 devices/s), without
//	            and with forbidden apps (which decrypts app lists)
//	api         GET /api/v1/tenants/{t}/devices, a page of 100 with two
//	            filters, over HTTPS by a signed-in owner (target p99 < 30 ms)
//
// The fleet is seeded mostly through the store in large transactions, with
// inventory passed through the privacy gate so that projections, facts and
// encrypted app lists are written by the real hook path. Seeding time is
// reported but is not a target.
//
// On PostgreSQL the bench runs ANALYZE after seeding and after each create
// step (-analyze=false skips it), as autovacuum would on a production
// server before the next timed step; it prints whether autovacuum is on.
//
//	go run ./bench/fleet [-devices 10000] [-db postgres://…] [-phases groups,compliance,api] [-cpuprofile f.prof] [-keep]
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/fleet"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
)

var (
	dsn         = flag.String("db", "", "database DSN (default: a fresh SQLite file in a temp dir; PostgreSQL gets a schema of its own, dropped after)")
	devices     = flag.Int("devices", 10000, "devices in the fleet")
	appsShare   = flag.Float64("apps-share", 0.3, "share of devices that report an app list")
	appsPerDev  = flag.Int("apps", 40, "apps per reported app list")
	perTx       = flag.Int("per-tx", 200, "devices seeded per transaction")
	refreshes   = flag.Int("refreshes", 5, "timed refreshes per dynamic group")
	evaluations = flag.Int("evaluations", 3, "timed EvaluateTenant runs per policy variant")
	requests    = flag.Int("requests", 500, "timed API requests per filter pair (after the warm-up)")
	warmup      = flag.Int("warmup", 50, "untimed API requests per filter pair first")
	phases      = flag.String("phases", "groups,compliance,api", "comma-separated phases to measure")
	analyze     = flag.Bool("analyze", true, "PostgreSQL: ANALYZE after seeding and after each create, as autovacuum would before the next timed step (false: time the planner without statistics)")
	keep        = flag.Bool("keep", false, "keep the PostgreSQL schema or SQLite file afterwards, for inspection (its name is printed)")
	cpuprofile  = flag.String("cpuprofile", "", "write a CPU profile of the measured phases (not the seeding) to this file")
)

// bench is the fleet under test and the services wired over it.
type bench struct {
	ctx    context.Context
	st     store.Store
	iam    *iam.Service
	signer *audit.Signer
	priv   *privacy.Service
	mdm    *mdm.Service
	fleet  fleet.Services
	quiet  *slog.Logger
	dsn    string // the store's DSN (PostgreSQL: with the bench's search_path)
	tenant string
	owner  iam.Actor
	secret string // the owner's CLI session bearer
	// groupID is the dynamic group the API benchmark filters on ("" when
	// the groups phase did not run).
	groupID string
	rows    []row
}

// row is one line of the results table.
type row struct {
	measure, target, result string
}

// cleanups run before a fatal exit too, so a shared PostgreSQL server is
// left as it was found.
var cleanups []func()

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *devices < 1 || *perTx < 1 || *requests < 1 || *refreshes < 1 || *evaluations < 1 || *appsPerDev < 1 || *warmup < 0 {
		fatal(fmt.Errorf("-devices, -per-tx, -requests, -refreshes, -evaluations and -apps must be at least 1, -warmup at least 0"))
	}
	if *appsShare < 0 || *appsShare > 1 {
		fatal(fmt.Errorf("-apps-share must be between 0 and 1"))
	}
	want := strings.Split(*phases, ",")
	for _, p := range want {
		if !slices.Contains([]string{"groups", "compliance", "api"}, p) {
			fatal(fmt.Errorf("-phases: unknown phase %q; use groups, compliance and api, comma-separated", p))
		}
	}
	defer runCleanups()
	b := setup()
	fmt.Printf("command: %s\n", strings.Join(os.Args, " "))
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s/%s, %s; engine %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0),
		runtime.GOOS, runtime.GOARCH, runtime.Version(), b.st.Engine())
	fmt.Printf("load average at start: %s\n", loadAverage())
	if b.st.Engine() == "postgres" {
		fmt.Printf("PostgreSQL autovacuum: %s; ANALYZE after seeding and each create: %v\n", b.pgSetting("autovacuum"), *analyze)
	}

	start := time.Now()
	stats := b.seed()
	took := time.Since(start)
	b.analyzeTables("after seeding")
	fmt.Printf("seeded %d devices (%d with app lists of %d apps, %d personal) in %s, %.0f devices/s\n",
		*devices, stats.withApps, *appsPerDev, stats.personal, took.Round(time.Millisecond), float64(*devices)/took.Seconds())
	b.add("seeding through the store and the gate", "(not a target)", "%s, %.0f devices/s", took.Round(time.Millisecond), float64(*devices)/took.Seconds())

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
		cleanups = append(cleanups, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if slices.Contains(want, "groups") {
		b.groups()
	}
	if slices.Contains(want, "compliance") {
		b.compliance()
	}
	if slices.Contains(want, "api") {
		b.api()
	}
	fmt.Printf("load average at end: %s\n\n", loadAverage())
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "measurement (%s, %d devices)\ttarget\tresult\n", b.st.Engine(), *devices)
	for _, r := range b.rows {
		fmt.Fprintf(w, "%s\t%s\t%s\n", r.measure, r.target, r.result)
	}
	check(w.Flush())
}

// setup opens a fresh store, migrates it, bootstraps a tenant with its
// owner, signs the owner in and wires the services as the server does.
func setup() *bench {
	ctx := context.Background()
	target := *dsn
	switch {
	case target == "":
		dir, err := os.MkdirTemp("", "steward-bench-fleet-")
		check(err)
		target = filepath.Join(dir, "steward.db")
		if *keep {
			fmt.Printf("database kept: %s\n", target)
		} else {
			cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		}
	case strings.HasPrefix(target, "postgres"):
		target = benchSchema(ctx, target)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlstore.Open(ctx, target, sqlstore.WithLogger(quiet))
	check(err)
	cleanups = append(cleanups, func() { st.Close() })
	_, err = st.Migrate(ctx)
	check(err)

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := secrets.NewSealer(key)
	check(err)
	signer, err := audit.LoadOrCreateSigner(ctx, st, sealer)
	check(err)
	cfg := iam.DefaultConfig()
	cfg.RequireMFA = false // the session is what matters here, not how it was obtained
	idm := iam.New(st, sealer, cfg, iam.WithLogger(quiet))
	priv := privacy.NewService(st, keys.New(sealer), signer, quiet)
	m := mdm.New(st, priv, sealer, mdm.Config{PublicURL: "https://steward.bench.test"}, quiet)
	b := &bench{ctx: ctx, st: st, dsn: target, iam: idm, signer: signer, priv: priv, mdm: m, quiet: quiet,
		fleet: fleet.Wire(st, priv, m, sealer, quiet)}

	const email, pw = "owner@fleet.bench.test", "Harbour-Lichen-Compass-58"
	owner, err := idm.BootstrapDirect(ctx, iam.BootstrapInput{Organisation: "Fleet Bench", Email: email, DisplayName: "Bench Owner", Password: pw})
	check(err)
	login, err := idm.Login(ctx, email, pw, store.SessionCLI, iam.Actor{Type: store.ActorAnonymous, SourceIP: "127.0.0.1"})
	check(err)
	if login.Secret == "" {
		fatal(fmt.Errorf("login did not complete (state %q)", login.State))
	}
	b.tenant, b.secret = owner.TenantID, login.Secret
	b.owner = iam.Actor{Type: store.ActorAdmin, ID: owner.ID, SourceIP: "127.0.0.1"}
	return b
}

// benchSchema creates a fresh schema, registers its removal, and returns a
// DSN that uses it.
func benchSchema(ctx context.Context, dsn string) string {
	admin, err := sql.Open("pgx", dsn)
	check(err)
	schema := fmt.Sprintf("steward_bench_fleet_%d", time.Now().UnixNano())
	_, err = admin.ExecContext(ctx, "CREATE SCHEMA "+schema)
	check(err)
	if *keep {
		fmt.Printf("schema kept: %s\n", schema)
		admin.Close()
	} else {
		cleanups = append(cleanups, func() {
			if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
				log.Printf("dropping schema %s: %v", schema, err)
			}
			admin.Close()
		})
	}
	u, err := url.Parse(dsn)
	check(err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// analyzeTables refreshes PostgreSQL's planner statistics, which a
// production server's autovacuum keeps current; a bulk-seeded schema has
// none until then, and plans chosen without them scan whole tenants.
// SQLite is left as sqlstore leaves it (it never runs ANALYZE).
func (b *bench) analyzeTables(when string) {
	if !*analyze || b.st.Engine() != "postgres" {
		return
	}
	start := time.Now()
	db, err := sql.Open("pgx", b.dsn)
	check(err)
	defer db.Close()
	_, err = db.ExecContext(b.ctx, "ANALYZE")
	check(err)
	fmt.Printf("ANALYZE %s: %s\n", when, ms(time.Since(start)))
}

func (b *bench) pgSetting(name string) string {
	db, err := sql.Open("pgx", b.dsn)
	check(err)
	defer db.Close()
	var v string
	check(db.QueryRowContext(b.ctx, "SELECT current_setting($1)", name).Scan(&v))
	return v
}

func (b *bench) add(measure, target, format string, args ...any) {
	b.rows = append(b.rows, row{measure, target, fmt.Sprintf(format, args...)})
}

// spread summarises durations as min / median / max.
func spread(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("min %s, median %s, max %s", ms(s[0]), ms(s[len(s)/2]), ms(s[len(s)-1]))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// runCleanups runs the registered cleanups, last first, once.
func runCleanups() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func fatal(err error) {
	log.Print(err)
	runCleanups()
	os.Exit(1)
}

func check(err error) {
	if err != nil {
		fatal(err)
	}
}
