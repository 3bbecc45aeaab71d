package mdm_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// BenchmarkRefreshSecurityFacts times one hourly refresh run over a tenant
// of 10,000 enrolled iPhones, each with 10 finished commands:
//   - steady: answers spread over the last 25 hours, so about 1 in 25 is due;
//   - first-day: every device due at once (a fleet enrolled in one day),
//     the run bounded to 1,000 devices;
//   - none-due: every answer fresh (the scan alone).
//
// Each iteration seeds a fresh database outside the timer; run it with
// -benchtime=1x (go test -run XXX -bench RefreshSecurityFacts -benchtime=1x ./internal/apple/mdm).
func BenchmarkRefreshSecurityFacts(b *testing.B) {
	const devices, commandsEach, perRun = 10000, 10, 1000
	for _, c := range []struct {
		name   string
		answer func(i int, now time.Time) time.Time
	}{
		{"steady", func(i int, now time.Time) time.Time { return now.Add(-time.Duration(i%25) * time.Hour) }},
		{"first-day", func(i int, now time.Time) time.Time { return now.Add(-25 * time.Hour) }},
		{"none-due", func(i int, now time.Time) time.Time { return now.Add(-time.Hour) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			asked := 0
			for b.Loop() {
				b.StopTimer()
				svc := seedRefreshFleet(b, devices, commandsEach, c.answer)
				b.StartTimer()
				n, err := svc.RefreshSecurityFacts(context.Background(), perRun)
				if err != nil {
					b.Fatal(err)
				}
				asked = n
			}
			b.ReportMetric(float64(asked), "devices-asked")
		})
	}
}

// seedRefreshFleet creates a tenant of n enrolled iPhones straight through
// the store, each answered at answer(i, now), and returns the service.
func seedRefreshFleet(b *testing.B, n, commandsEach int, answer func(int, time.Time) time.Time) *mdm.Service {
	ctx := context.Background()
	st := storetest.OpenSQLite(b)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, _ := secrets.NewSealer(key)
	signer, err := audit.LoadOrCreateSigner(ctx, st, sealer)
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	priv := privacy.NewService(st, keys.New(sealer), signer, quiet)
	svc := mdm.New(st, priv, sealer, mdm.Config{PublicURL: "https://mdm.example.test", MaxQueued: 100}, quiet)
	now := time.Now().UTC().Truncate(time.Microsecond)
	tenant := store.NewID()
	if err := st.Tx(ctx, func(q store.Queries) error {
		return q.Tenants().Create(ctx, store.Tenant{ID: tenant, Kind: store.TenantProvider, Name: "Bench", Slug: "bench-" + tenant[len(tenant)-6:],
			CreatedAt: now, UpdatedAt: now})
	}); err != nil {
		b.Fatal(err)
	}
	value := func(v any) []byte { raw, _ := json.Marshal(v); return raw }
	const perTx = 500
	for first := 0; first < n; first += perTx {
		if err := st.Tx(ctx, func(q store.Queries) error {
			var values []store.InventoryValue
			var cmds []store.Command
			for i := first; i < min(first+perTx, n); i++ {
				d := store.Device{ID: store.NewID(), TenantID: tenant, Ownership: string(privacy.Corporate), Platform: "ios",
					State: store.DeviceEnrolled, EnrolledAt: now.Add(-30 * 24 * time.Hour), LastSeenAt: now.Add(-time.Hour), CreatedAt: now, UpdatedAt: now}
				if err := q.Devices().Create(ctx, d); err != nil {
					return err
				}
				if err := q.ManagedDevices().SetProjection(ctx, store.DeviceProjection{TenantID: tenant, DeviceID: d.ID, OSVersion: "17.5",
					OSVersionKey: "017.005.000", Model: "iPhone 15", Facts: []byte(`{"os.version":"17.5"}`)}); err != nil {
					return err
				}
				if err := q.AppleChannels().Create(ctx, store.AppleChannel{DeviceID: d.ID, TenantID: tenant, CertFingerprint: []byte(d.ID),
					CertNotAfter: now.Add(365 * 24 * time.Hour), EnrolmentID: store.NewID(), ChannelIndex: []byte(d.ID), Topic: "com.apple.mgmt.bench",
					PushToken: []byte("token"), PushMagic: "magic", LastCheckin: d.LastSeenAt, CreatedAt: now, UpdatedAt: now}); err != nil {
					return err
				}
				at := answer(i, now)
				for field, v := range map[string]any{"security.passcode_present": true, "security.passcode_compliant": true,
					"security.encrypted": true, "os.version": "17.5"} {
					category := privacy.SecurityState
					if field == "os.version" {
						category = privacy.OS
					}
					values = append(values, store.InventoryValue{TenantID: tenant, DeviceID: d.ID, Field: field, Category: string(category),
						Value: value(v), CollectedAt: at})
				}
				for k := range commandsEach {
					rt := []mdmproto.RequestType{mdmproto.RequestSecurityInfo, mdmproto.RequestProfileList, mdmproto.RequestInstalledApplicationList}[k%3]
					cmds = append(cmds, store.Command{ID: fmt.Sprintf("%s-%02d", d.ID, k), TenantID: tenant, DeviceID: d.ID, RequestType: string(rt), Payload: []byte{},
						State: store.CommandAcknowledged, RequestedBy: "system:steward", CreatedAt: at.Add(-time.Duration(commandsEach-k) * 24 * time.Hour)})
				}
			}
			if err := q.Inventory().Put(ctx, values, nil); err != nil {
				return err
			}
			return q.Commands().Enqueue(ctx, cmds, 1000)
		}); err != nil {
			b.Fatal(err)
		}
	}
	return svc
}
