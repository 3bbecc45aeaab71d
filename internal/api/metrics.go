package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-mdm/steward/internal/iam/password"
)

var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "steward_http_requests_total",
		Help: "HTTP requests by route pattern and status code.",
	}, []string{"route", "code"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "steward_http_request_duration_seconds",
		Help:    "HTTP request latency by route pattern.",
		Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route"})
	passwordHashes = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "steward_password_hashes_total",
		Help: "Password hashes computed (argon2id): logins, password changes and the decoys spent on failed logins.",
	}, func() float64 { n, _ := password.Derivations(); return float64(n) })
	passwordHashQueue = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "steward_password_hash_queue",
		Help: "Password hashes waiting for one of the bounded hashing slots; a lasting queue means a login flood.",
	}, func() float64 { _, q := password.Derivations(); return float64(q) })
)

// RegisterMetrics adds the API's collectors to reg.
func RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{requestsTotal, requestDuration, passwordHashes, passwordHashQueue} {
		if err := reg.Register(c); err != nil {
			if _, dup := err.(prometheus.AlreadyRegisteredError); !dup {
				return err
			}
		}
	}
	return nil
}

func observeRequest(route string, status int, d time.Duration) {
	requestsTotal.WithLabelValues(route, strconv.Itoa(status)).Inc()
	requestDuration.WithLabelValues(route).Observe(d.Seconds())
}
