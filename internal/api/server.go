// Package api serves Steward's REST API under /api/v1. Every operation is a
// Route in one table (routes.go); the mux, authorisation, the OpenAPI
// document and the route-enumerating tests are all derived from it.
package api

import (
	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

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

// clientIP is the caller's address: the connection's peer, or the nearest
// untrusted hop of X-Forwarded-For when the peer is a trusted proxy. A
// trusted peer with a missing or unreadable header yields "", which no
// allowlist admits: failing open here would let anyone in through the proxy.
func (s *Server) clientIP(r *http.Request) string {
	addr, ok := s.peer(r)
	if !ok {
		return ""
	}
	if !s.trusted(addr) {
		return addr.String()
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, splitComma(h)...)
	}
	client := ""
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return ""
		}
		client = a.String()
		if !s.trusted(a) {
			break
		}
	}
	return client // every hop trusted: the first is the client
}

func (s *Server) peer(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// parseHop reads one X-Forwarded-For entry: an address, optionally with a
// port or in brackets, as proxies write them.
func parseHop(h string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func splitComma(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// now is the API's clock for response fields.
func now() time.Time { return time.Now().UTC() }
