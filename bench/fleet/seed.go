package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/store"
)

// One version range for every platform keeps the selectivity of the rules
// and policies easy to read: about 40 % of devices are below 17.4.
var osVersions = []string{"16.7.10", "17.0.3", "17.2.1", "17.3.1", "17.4", "17.5.1", "17.6.1", "18.0.1", "18.1.1", "18.2", "18.3.2", "18.5"}

var modelsByPlatform = map[string][]string{
	"ios":    {"iPhone 14", "iPhone 15", "iPhone 15 Pro", "iPhone 16", "iPhone SE"},
	"ipados": {"iPad Air", "iPad Pro", "iPad mini", "iPad"},
	"macos":  {"MacBook Air", "MacBook Pro", "iMac", "Mac mini"},
}

// appPool is the catalogue app lists draw from; each list holds a random
// 40 of these, so com.example.app007 is on about a fifth of them.
const appPool = 200

type seedStats struct {
	withApps, personal int
}

// seed creates the fleet, perTx devices per transaction: each device is
// created enrolled through the store, gets its data key as registration
// would give it, and its inventory goes through the privacy gate (whose
// hook fills the projection and evaluates groups and compliance).
func (b *bench) seed() seedStats {
	var stats seedStats
	now := time.Now().UTC().Truncate(time.Microsecond)
	for first := 0; first < *devices; first += *perTx {
		last := min(first+*perTx, *devices)
		batch := seedStats{}
		check(b.st.Tx(b.ctx, func(q store.Queries) error {
			batch = seedStats{}
			for i := first; i < last; i++ {
				d, report := generate(b.tenant, i, now)
				var err error
				if d.KeyID, err = b.priv.Vault().EnsureDataKey(b.ctx, q, b.tenant, keys.DeviceOwner(d.ID), ""); err != nil {
					return err
				}
				if err := q.Devices().Create(b.ctx, d); err != nil {
					return err
				}
				if _, err := b.priv.Gate().Admit(b.ctx, q, report); err != nil {
					return fmt.Errorf("device %d: %w", i, err)
				}
				if d.Ownership == string(privacy.Personal) {
					batch.personal++
				}
				if len(report.Values) > 5 {
					batch.withApps++
				}
			}
			return nil
		}))
		stats.withApps += batch.withApps
		stats.personal += batch.personal
	}
	return stats
}

// generate makes device i and its inventory report, the same for the same
// i on every run.
func generate(tenant string, i int, now time.Time) (store.Device, privacy.Report) {
	rng := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	platform := []string{"ios", "ios", "ios", "ipados", "macos", "macos"}[rng.IntN(6)]
	ownership := string(privacy.Corporate)
	if rng.Float64() < 0.3 {
		ownership = string(privacy.Personal)
	}
	lastSeen := now.Add(-time.Duration(rng.Int64N(int64(60 * 24 * time.Hour)))).Truncate(time.Microsecond)
	enrolled := lastSeen.Add(-time.Duration(rng.Int64N(int64(365*24*time.Hour))) - time.Hour).Truncate(time.Microsecond)
	d := store.Device{ID: store.NewID(), TenantID: tenant, Ownership: ownership, Platform: platform, State: store.DeviceEnrolled,
		EnrolledAt: enrolled, LastSeenAt: lastSeen, CreatedAt: enrolled, UpdatedAt: now}
	models := modelsByPlatform[platform]
	r := privacy.Report{TenantID: tenant, DeviceID: d.ID, Source: "bench/fleet", Values: []privacy.Observation{
		{Field: "os.version", Value: osVersions[rng.IntN(len(osVersions))]},
		{Field: "hardware.model", Value: models[rng.IntN(len(models))]},
		{Field: "security.passcode_present", Value: rng.Float64() < 0.95},
		{Field: "security.encrypted", Value: rng.Float64() < 0.97},
		{Field: "security.passcode_compliant", Value: rng.Float64() < 0.9},
	}}
	if rng.Float64() < *appsShare {
		r.Values = append(r.Values, privacy.Observation{Field: "apps.installed", Value: appList(rng, *appsPerDev)})
	}
	return d, r
}

// appList draws n distinct apps from the pool; about one in four is
// managed (the only ones a personal device's list keeps).
func appList(rng *rand.Rand, n int) []privacy.App {
	n = min(n, appPool)
	apps := make([]privacy.App, 0, n)
	for _, k := range rng.Perm(appPool)[:n] {
		apps = append(apps, privacy.App{ID: fmt.Sprintf("com.example.app%03d", k), Name: fmt.Sprintf("Example App %d", k),
			Version: fmt.Sprintf("%d.%d", 1+k%5, k%10), Managed: k%4 == 0})
	}
	return apps
}
