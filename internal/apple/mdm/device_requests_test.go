package mdm_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestDeviceRequestsLabelOnlyKnownTenants: a request naming a tenant that
// does not exist is counted under "unknown", so whoever can reach the
// endpoints cannot mint a metric series per made-up path.
func TestDeviceRequestsLabelOnlyKnownTenants(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		ts := f.serve()
		metrics := prometheus.NewRegistry()
		metrics.MustRegister(f.svc.MetricsCollector())
		madeUp := []string{uuid.NewString(), uuid.NewString(), "not-a-tenant"}
		post := func(tenant, endpoint, contentType string) int {
			t.Helper()
			resp, err := ts.Client().Post(ts.URL+"/mdm/"+tenant+"/"+endpoint, contentType, strings.NewReader("<plist/>"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for _, name := range madeUp {
			if got := post(name, "checkin", checkinType); got != http.StatusNotFound {
				t.Errorf("check-in for tenant %q: HTTP %d, want 404", name, got)
			}
			if got := post(name, "connect", connectType); got != http.StatusNotFound {
				t.Errorf("connect for tenant %q: HTTP %d, want 404", name, got)
			}
		}
		if got := post(f.tenant, "checkin", checkinType); got != http.StatusForbidden {
			t.Errorf("an unsigned check-in: HTTP %d, want 403", got)
		}

		counted := map[[3]string]float64{}
		for _, s := range counterSeries(t, metrics, "steward_apple_device_requests_total") {
			counted[[3]string{s.labels["tenant"], s.labels["endpoint"], s.labels["outcome"]}] += s.value
		}
		want := map[[3]string]float64{
			{"unknown", "checkin", "not_found"}: 3,
			{"unknown", "connect", "not_found"}: 3,
			{f.tenant, "checkin", "not_signed"}: 1,
		}
		if len(counted) != len(want) {
			t.Errorf("series: %v, want %v", counted, want)
		}
		for series, n := range want {
			if counted[series] != n {
				t.Errorf("%v counted %v, want %v (all: %v)", series, counted[series], n, counted)
			}
		}
		// A deleted tenant's series go with it.
		if err := f.st.Tx(f.ctx, func(q store.Queries) error { return f.svc.ForgetTenant(f.ctx, q, f.tenant) }); err != nil {
			t.Fatal(err)
		}
		for _, s := range counterSeries(t, metrics, "steward_apple_device_requests_total") {
			if s.labels["tenant"] == f.tenant {
				t.Errorf("a deleted tenant's series stays: %v", s.labels)
			}
		}
	})
}
