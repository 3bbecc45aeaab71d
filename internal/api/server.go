// Package api serves Steward's REST API under /api/v1. Every operation is a
// Route in one table (routes.go); the mux, authorisation, the OpenAPI
// document and the route-enumerating tests are all derived from it.
package api

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/proxy"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/iam/throttle"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// SessionCookie holds a browser session. The __Host- prefix makes browsers
// refuse it unless it is Secure, host-only and for path /.
const SessionCookie = "__Host-steward_session"

// CSRFHeader carries the per-session CSRF token on state-changing browser
// requests.
const CSRFHeader = "X-CSRF-Token"

// Options configures the API server.
type Options struct {
	Store  store.Store
	IAM    *iam.Service
	Signer *audit.Signer
	// Privacy is the privacy core (catalogue, people, devices, portal).
	Privacy *privacy.Service
	// MDM is the Apple MDM service (enrolments, commands).
	MDM *mdm.Service
	// Devices, Actions and Compliance are device management.
	Devices    *device.Service
	Actions    *actions.Service
	Compliance *compliance.Engine
	Logger     *slog.Logger
	// TrustedProxies are the addresses whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// ClientCertHeader is the header in which a trusted proxy forwards a
	// device's client certificate to the access check; empty turns
	// forwarding off, so a proxy that passes client headers through cannot
	// be used to present another device's (public) certificate.
	ClientCertHeader string
	// Ready reports whether the server can take traffic (for /readyz).
	Ready func(r *http.Request) error
	// Metrics, when set, is served at /metrics behind system.metrics.
	Metrics http.Handler
	// AuthRate and AuthBurst bound unauthenticated attempts per source IP.
	AuthRate  float64
	AuthBurst int
}

// Server is the API.
type Server struct {
	opts    Options
	log     *slog.Logger
	iam     *iam.Service
	st      store.Store
	limiter *throttle.Limiter
	routes  []Route
}

// New builds the API server.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.AuthRate == 0 {
		o.AuthRate, o.AuthBurst = 1, 10
	}
	s := &Server{opts: o, log: o.Logger, iam: o.IAM, st: o.Store,
		limiter: throttle.NewLimiter(o.AuthRate, o.AuthBurst, 100_000)}
	s.routes = s.routeTable()
	return s
}

// Routes returns the route table.
func (s *Server) Routes() []Route { return s.routes }

// Handler returns the HTTP handler with every middleware applied.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		mux.Handle(rt.Method+" "+rt.Path, s.dispatch(rt))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, apperr.New(apperr.KindNotFound, "no such route; GET /api/v1/openapi.json lists them"))
	})
	var h http.Handler = mux
	h = s.accessLog(h)
	h = securityHeaders(h)
	h = s.recoverPanics(h)
	h = s.withRequestID(h)
	return h
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(r); err != nil {
			writeError(w, r, s.log, apperr.New(apperr.KindUnavailable, "not ready: %s", err.Error()))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// clientIP is the caller's address, through trusted proxies.
func (s *Server) clientIP(r *http.Request) string {
	return proxy.Trusted(s.opts.TrustedProxies).ClientIP(r)
}

// now is the API's clock for response fields.
func now() time.Time { return time.Now().UTC() }
