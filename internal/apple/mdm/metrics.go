package mdm

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/steward-mdm/steward/internal/privacy"
)

var pushCertDaysLeft = prometheus.NewDesc("steward_apns_certificate_days_left",
	"Days until a tenant's APNs push certificate expires; renew it before 0 or every device is lost.", []string{"tenant", "topic"}, nil)

var pushCertRefused = prometheus.NewDesc("steward_apns_certificate_refused",
	"1 while APNs refuses a tenant's push certificate or its topic (403 BadCertificate, 400 TopicDisallowed…, a TLS "+
		"certificate alert): no device is woken until an administrator uploads a working one. 0 otherwise.",
	[]string{"tenant", "topic"}, nil)

// newPushFailures counts the pushes that failed, on the node that sent
// them. The reason is one of a fixed set (apns.Result.ReasonLabel), so the
// series stay bounded by the tenants.
func newPushFailures() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "steward_apns_push_failures_total", Help: pushFailuresHelp},
		[]string{"tenant", "reason"})
}

const pushFailuresHelp = "Pushes to Apple devices that failed, by tenant and APNs reason (Other: an undocumented one; NoResponse: " +
	"no answer). Pushes not sent because APNs had just refused the certificate, or kept failing, are not counted."

var (
	identitiesExpiring = prometheus.NewDesc("steward_apple_identity_certificates_expiring",
		"Managed Apple devices whose identity certificate expires within 30 days; Steward sends them a new one, and a "+
			"device that stays off past expiry must enrol again.", []string{"tenant"}, nil)
	identitiesExpired = prometheus.NewDesc("steward_apple_identity_certificates_expired",
		"Managed Apple devices whose identity certificate has expired: they can no longer reach Steward and must enrol again.",
		[]string{"tenant"}, nil)
)

var profileSignerDaysLeft = prometheus.NewDesc("steward_profile_signer_days_left",
	"Days until the certificate that signs enrolment profiles (--profile-signer-cert) expires; past it, devices show "+
		"downloaded profiles as not verified. Absent when none is configured.", nil, nil)

// MetricsCollector reports push certificate health and device identity
// expiry per tenant, read at scrape time, and this node's push failures
// and device requests.
func (s *Service) MetricsCollector() prometheus.Collector { return pushCollector{s} }

type pushCollector struct{ s *Service }

func (c pushCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pushCertDaysLeft
	ch <- pushCertRefused
	c.s.pushFailures.Describe(ch)
	c.s.deviceRequests.Describe(ch)
	ch <- identitiesExpiring
	ch <- identitiesExpired
	ch <- profileSignerDaysLeft
}

func (c pushCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tenants, err := privacy.TenantIDs(ctx, c.s.st.Read())
	if err != nil {
		c.s.log.Warn("metrics: listing tenants", "error", err.Error())
		c.s.pushFailures.Collect(ch)
		c.s.deviceRequests.Collect(ch)
		return
	}
	// ForgetTenant drops a deleted tenant's series on the node that deletes
	// it; the node that counted them (the pusher's, a device's) drops them
	// here, and so do series a request under way added after the deletion.
	live := make(map[string]bool, len(tenants))
	for _, t := range tenants {
		live[t] = true
	}
	dropDeletedTenants(c.s.pushFailures, live)
	dropDeletedTenants(c.s.deviceRequests, live)
	c.s.pushFailures.Collect(ch)
	c.s.deviceRequests.Collect(ch)
	now := c.s.clock()
	if ps := c.s.signer; ps != nil {
		ch <- prometheus.MustNewConstMetric(profileSignerDaysLeft, prometheus.GaugeValue, math.Floor(ps.cert.NotAfter.Sub(now).Hours()/24))
	}
	counts, err := c.s.st.Read().AppleChannels().CertificateExpiry(ctx, now, now.Add(identityRenewalWindow))
	if err != nil {
		c.s.log.Warn("metrics: counting expiring device identities", "error", err.Error())
	}
	for _, n := range counts {
		ch <- prometheus.MustNewConstMetric(identitiesExpiring, prometheus.GaugeValue, float64(n.Expiring), n.TenantID)
		ch <- prometheus.MustNewConstMetric(identitiesExpired, prometheus.GaugeValue, float64(n.Expired), n.TenantID)
	}
	for _, t := range tenants {
		st, err := c.s.PushCertificateStatus(ctx, t)
		if errors.Is(err, ErrNoPushCertificate) {
			continue
		}
		if err != nil {
			c.s.log.Warn("metrics: a push certificate or its refusal does not read", "tenant", t, "error", err.Error())
			continue
		}
		ch <- prometheus.MustNewConstMetric(pushCertDaysLeft, prometheus.GaugeValue, float64(st.DaysLeft), t, st.Topic)
		refused := 0.0
		if st.Refused != nil {
			refused = 1
		}
		ch <- prometheus.MustNewConstMetric(pushCertRefused, prometheus.GaugeValue, refused, t, st.Topic)
	}
}

// dropDeletedTenants deletes vec's series whose tenant label names none of
// live (unknownTenantLabel is no tenant's, and stays).
func dropDeletedTenants(vec *prometheus.CounterVec, live map[string]bool) {
	series := make(chan prometheus.Metric, 64)
	go func() {
		vec.Collect(series)
		close(series)
	}()
	gone := map[string]bool{}
	for m := range series {
		var pb dto.Metric
		if m.Write(&pb) != nil {
			continue
		}
		for _, l := range pb.GetLabel() {
			if l.GetName() == "tenant" && !live[l.GetValue()] && l.GetValue() != unknownTenantLabel {
				gone[l.GetValue()] = true
			}
		}
	}
	for t := range gone {
		vec.DeletePartialMatch(prometheus.Labels{"tenant": t})
	}
}
