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

var (
	identitiesExpiring = prometheus.NewDesc("steward_apple_identity_certificates_expiring",
		"Managed Apple devices whose identity certificate expires within 30 days; Steward sends them a new one, and a "+
			"device that stays off past expiry must enrol again.", []string{"tenant"}, nil)
	identitiesExpired = prometheus.NewDesc("steward_apple_identity_certificates_expired",
		"Managed Apple devices whose identity certificate has expired: they can no longer reach Steward and must enrol again.",
		[]string{"tenant"}, nil)
)

// MetricsCollector reports push certificate and device identity expiry per
// tenant, read at scrape time.
func (s *Service) MetricsCollector() prometheus.Collector { return pushCollector{s} }

type pushCollector struct{ s *Service }

func (c pushCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pushCertDaysLeft
	ch <- identitiesExpiring
	ch <- identitiesExpired
}

func (c pushCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tenants, err := privacy.TenantIDs(ctx, c.s.st.Read())
	if err != nil {
		c.s.log.Warn("metrics: listing tenants", "error", err.Error())
		return
	}
	now := c.s.clock()
	counts, err := c.s.st.Read().AppleChannels().CertificateExpiry(ctx, now, now.Add(identityRenewalWindow))
	if err != nil {
		c.s.log.Warn("metrics: counting expiring device identities", "error", err.Error())
	}
	for _, n := range counts {
		ch <- prometheus.MustNewConstMetric(identitiesExpiring, prometheus.GaugeValue, float64(n.Expiring), n.TenantID)
		ch <- prometheus.MustNewConstMetric(identitiesExpired, prometheus.GaugeValue, float64(n.Expired), n.TenantID)
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
		st := cert.Status(now)
		ch <- prometheus.MustNewConstMetric(pushCertDaysLeft, prometheus.GaugeValue, float64(st.DaysLeft), t, st.Topic)
	}
}
