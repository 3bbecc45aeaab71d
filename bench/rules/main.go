// Command rules measures the rule engine: three realistic dynamic-group
// rules evaluated over a generated fleet.
//
//	go run ./bench/rules [-devices 10000] [-apps 150] [-rounds 20]
//
// "eval" evaluates the three rules on Facts already filled for every device
// (the steady state of a group refresh). "fill+eval" refills one reused
// Facts from each device's decoded inventory first, as a refresh that reads
// devices from the store does, once with app lists in random order (Facts
// sorts them) and once with lists already sorted. Rates are devices per second, each device
// evaluated against all three rules.
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/rules"
)

var (
	devices = flag.Int("devices", 10000, "devices in the generated fleet")
	apps    = flag.Int("apps", 150, "installed apps per device")
	rounds  = flag.Int("rounds", 20, "passes over the fleet per measurement")
)

var groupRules = []string{
	// Corporate iPhones that still need the 17.4 update.
	`{"all":[{"attr":"ownership","op":"eq","value":"corporate"},{"attr":"model","op":"prefix","value":"iPhone"},
	  {"attr":"os.version","op":"lt","value":"17.4"}]}`,
	// At risk: stale, unencrypted or unsupervised.
	`{"any":[{"attr":"last_checkin","op":"older_than","value":"30d"},{"attr":"encrypted","op":"eq","value":false},
	  {"not":{"attr":"supervised","op":"eq","value":true}}]}`,
	// Forbidden apps on a corporate device outside the lab, or nearly full storage.
	`{"all":[{"attr":"ownership","op":"eq","value":"corporate"},{"not":{"attr":"tags","op":"contains","value":"lab"}},
	  {"any":[{"attr":"apps","op":"contains_any","value":["com.torrent.client","com.vpn.free","com.game.casino","com.chat.unvetted","com.cloud.personal"]},
	          {"attr":"storage.free_gb","op":"lt","value":2}]}]}`,
}

// device is one generated device's inventory, as the store would decode it.
type device struct {
	version, model, ownership string
	encrypted, supervised     bool
	freeGB                    float64
	lastCheckin               time.Time
	apps, tags                []string
}

type handles struct {
	version   rules.VersionAttr
	model     rules.StringAttr
	ownership rules.StringAttr
	encrypted rules.BoolAttr
	supervise rules.BoolAttr
	freeGB    rules.NumberAttr
	checkin   rules.TimeAttr
	apps      rules.StringSetAttr
	tags      rules.StringSetAttr
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s/%s, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	schema, err := rules.NewSchema(map[string]rules.Type{
		"os.version": rules.TypeVersion, "model": rules.TypeString, "ownership": rules.TypeString,
		"encrypted": rules.TypeBool, "supervised": rules.TypeBool, "storage.free_gb": rules.TypeNumber,
		"last_checkin": rules.TypeTime, "apps": rules.TypeStringSet, "tags": rules.TypeStringSet,
	})
	if err != nil {
		log.Fatal(err)
	}
	h := mustHandles(schema)
	compiled := make([]*rules.Rule, len(groupRules))
	for i, raw := range groupRules {
		if compiled[i], err = rules.Compile([]byte(raw), schema); err != nil {
			log.Fatalf("rule %d: %v", i, err)
		}
		fmt.Printf("rule %d: %s\n", i+1, compiled[i])
	}
	now := time.Now()
	fleet := generate(*devices, *apps, now)

	filled := make([]*rules.Facts, len(fleet))
	for i := range fleet {
		filled[i] = schema.NewFacts()
		fleet[i].fill(filled[i], h)
	}
	members := make([]int, len(compiled))
	start := time.Now()
	for range *rounds {
		clear(members)
		for _, f := range filled {
			for j, r := range compiled {
				if r.Eval(f, now).Matches() {
					members[j]++
				}
			}
		}
	}
	report("eval", start, members)

	reused := schema.NewFacts()
	refill := func(name string) {
		start := time.Now()
		for range *rounds {
			clear(members)
			for i := range fleet {
				reused.Reset()
				fleet[i].fill(reused, h)
				for j, r := range compiled {
					if r.Eval(reused, now).Matches() {
						members[j]++
					}
				}
			}
		}
		report(name, start, members)
	}
	refill("fill+eval (app lists unsorted)")
	for i := range fleet { // as a store that keeps inventory lists sorted would hand them over
		slices.Sort(fleet[i].apps)
	}
	refill("fill+eval (app lists sorted)")
}

func report(name string, start time.Time, members []int) {
	elapsed := time.Since(start)
	evaluated := *devices * *rounds
	fmt.Printf("%s: %d devices × 3 rules × %d rounds in %v: %.0f devices/s, %.1f ms per fleet pass; members %v\n",
		name, *devices, *rounds, elapsed.Round(time.Millisecond), float64(evaluated)/elapsed.Seconds(),
		float64(elapsed.Microseconds())/1000/float64(*rounds), members)
}

func (d *device) fill(f *rules.Facts, h handles) {
	f.SetVersion(h.version, d.version)
	f.SetString(h.model, d.model)
	f.SetString(h.ownership, d.ownership)
	f.SetBool(h.encrypted, d.encrypted)
	f.SetBool(h.supervise, d.supervised)
	f.SetNumber(h.freeGB, d.freeGB)
	f.SetTime(h.checkin, d.lastCheckin)
	f.SetStringSet(h.apps, d.apps)
	f.SetStringSet(h.tags, d.tags)
}

func generate(n, appCount int, now time.Time) []device {
	rng := rand.New(rand.NewPCG(1, 2)) // fixed seed: the same fleet every run
	versions := []string{"16.7.8", "17.0", "17.3.1", "17.4", "17.4.1", "17.5", "18.0", "18.1.1"}
	models := []string{"iPhone15,2", "iPhone16,1", "iPhone16,2", "iPad14,1", "Mac15,3"}
	catalog := make([]string, 2000)
	for i := range catalog {
		catalog[i] = fmt.Sprintf("com.vendor%04d.app", i)
	}
	forbidden := []string{"com.torrent.client", "com.vpn.free", "com.game.casino"}
	fleet := make([]device, n)
	for i := range fleet {
		d := &fleet[i]
		d.version = versions[rng.IntN(len(versions))]
		d.model = models[rng.IntN(len(models))]
		d.ownership = "corporate"
		if rng.IntN(4) == 0 {
			d.ownership = "personal"
		}
		d.encrypted = rng.IntN(20) != 0
		d.supervised = rng.IntN(10) != 0
		d.freeGB = rng.Float64() * 128
		d.lastCheckin = now.Add(-time.Duration(rng.Int64N(int64(45 * 24 * time.Hour))))
		d.apps = make([]string, 0, appCount)
		for range appCount {
			d.apps = append(d.apps, catalog[rng.IntN(len(catalog))])
		}
		if rng.IntN(50) == 0 {
			d.apps = append(d.apps, forbidden[rng.IntN(len(forbidden))])
		}
		if rng.IntN(10) == 0 {
			d.tags = []string{"lab"}
		}
	}
	return fleet
}

func mustHandles(s *rules.Schema) handles {
	var h handles
	var errs [9]error
	h.version, errs[0] = s.VersionAttr("os.version")
	h.model, errs[1] = s.StringAttr("model")
	h.ownership, errs[2] = s.StringAttr("ownership")
	h.encrypted, errs[3] = s.BoolAttr("encrypted")
	h.supervise, errs[4] = s.BoolAttr("supervised")
	h.freeGB, errs[5] = s.NumberAttr("storage.free_gb")
	h.checkin, errs[6] = s.TimeAttr("last_checkin")
	h.apps, errs[7] = s.StringSetAttr("apps")
	h.tags, errs[8] = s.StringSetAttr("tags")
	for _, err := range errs {
		if err != nil {
			log.Fatal(err)
		}
	}
	return h
}
