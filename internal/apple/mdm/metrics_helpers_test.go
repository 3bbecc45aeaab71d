package mdm_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// series is one series of a counter: its labels and value.
type series struct {
	labels map[string]string
	value  float64
}

// counterSeries reads every series of the counter family name in reg.
func counterSeries(t *testing.T, reg prometheus.Gatherer, name string) []series {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []series
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.Metric {
			s := series{labels: map[string]string{}, value: m.GetCounter().GetValue()}
			for _, l := range m.Label {
				s.labels[l.GetName()] = l.GetValue()
			}
			out = append(out, s)
		}
	}
	return out
}

// pushFailures is steward_apns_push_failures_total for the tenant and reason.
func pushFailures(t *testing.T, reg prometheus.Gatherer, tenant, reason string) float64 {
	t.Helper()
	for _, s := range counterSeries(t, reg, "steward_apns_push_failures_total") {
		if s.labels["tenant"] == tenant && s.labels["reason"] == reason {
			return s.value
		}
	}
	return 0
}
