package mdm

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestDeletedTenantsSeriesGoAtScrape: the node that counted a tenant's push
// failures and device requests is often not the one that deleted it, so a
// scrape drops the series of tenants that no longer exist and keeps the
// others'.
func TestDeletedTenantsSeriesGoAtScrape(t *testing.T) {
	st := storetest.OpenSQLite(t)
	ctx := context.Background()
	kept := store.Tenant{ID: store.NewID(), Kind: store.TenantProvider, Name: "Kept", Slug: "kept", CreatedAt: time.Now()}
	if err := st.Tx(ctx, func(q store.Queries) error { return q.Tenants().Create(ctx, kept) }); err != nil {
		t.Fatal(err)
	}
	s := &Service{st: st, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now,
		pushFailures: newPushFailures(), deviceRequests: newDeviceRequests()}
	deleted := store.NewID()
	for _, tenant := range []string{kept.ID, deleted} {
		s.pushFailures.WithLabelValues(tenant, "ServiceUnavailable").Inc()
	}
	s.deviceRequests.WithLabelValues(deleted, "connect", "ok").Inc()
	s.deviceRequests.WithLabelValues(unknownTenantLabel, "connect", "not_found").Inc()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.MetricsCollector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var tenants []string
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" {
					tenants = append(tenants, f.GetName()+" "+l.GetValue())
				}
			}
		}
	}
	slices.Sort(tenants)
	want := []string{"steward_apns_push_failures_total " + kept.ID, "steward_apple_device_requests_total " + unknownTenantLabel}
	if !slices.Equal(tenants, want) {
		t.Errorf("series by tenant after the scrape: %v, want %v", tenants, want)
	}
}
