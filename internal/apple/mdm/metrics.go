package mdm

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-mdm/steward/internal/privacy"
)

var pushCertDaysLeft = prometheus.NewDesc("steward_apns_certificate_days_left",
	"Days until a tenant's APNs push certificate expires; renew it before 0 or every device is lost.", []string{"tenant", "topic"}, nil)

// MetricsCollector reports push certificate expiry per tenant, read at
// scrape time.
func (s *Service) MetricsCollector() prometheus.Collector { return pushCollector{s} }

type pushCollector struct{ s *Service }

func (c pushCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pushCertDaysLeft }

func (c pushCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tenants, err := privacy.TenantIDs(ctx, c.s.st.Read())
	if err != nil {
		c.s.log.Warn("metrics: listing tenants", "error", err.Error())
		return
	}
	for _, t := range tenants {
		cert, err := c.s.PushCertificate(ctx, t)
		if errors.Is(err, ErrNoPushCertificate) {
			continue
		}
		if err != nil {
			c.s.log.Warn("metrics: a push certificate does not open", "tenant", t, "error", err.Error())
			continue
		}
		st := cert.Status(time.Now())
		ch <- prometheus.MustNewConstMetric(pushCertDaysLeft, prometheus.GaugeValue, float64(st.DaysLeft), t, st.Topic)
	}
}
