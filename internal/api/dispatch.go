package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

var (
	errMFAPending = apperr.New(apperr.KindMFARequired, "finish signing in: send your authenticator code to POST /api/v1/auth/mfa")
	errCSRF       = apperr.Forbidden("missing or wrong %s header; the console sends the token it received at sign-in", CSRFHeader)
	errOrigin     = apperr.Forbidden("cross-site requests are not accepted")
	errRateLimit  = apperr.New(apperr.KindRateLimited, "too many attempts from this address; wait a moment").With("retry_after_seconds", 1)
)

// dispatch runs one route: authenticate, check the second factor, CSRF and
// allowlists, authorise against the route's declared permission, then call
// the handler and write its result.
func (s *Server) dispatch(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &Call{W: w, R: r, srv: s, maxBody: rt.bodyLimit()}
		ip := s.clientIP(r)
		c.Actor = iam.Actor{Type: store.ActorAnonymous, SourceIP: ip, RequestID: requestID(r.Context()), UserAgent: r.UserAgent()}
		if err := s.admit(rt, c, ip); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		out, err := rt.Handle(c)
		if err != nil {
			s.auditRefusal(c, rt, err)
			writeError(w, r, s.log, err)
			return
		}
		if out == streamed {
			return
		}
		status := rt.successStatus()
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, out)
	})
}

// streamed is what a handler returns when it wrote the response itself.
var streamed = &struct{ streamed bool }{true}

func (s *Server) admit(rt Route, c *Call, ip string) error {
	r := c.R
	if rt.Access.Kind == AccessPortal {
		return s.admitPortal(c, ip)
	}
	if !rt.Access.authenticated() {
		if rt.Method != http.MethodGet && !s.limiter.Allow(ip) {
			return errRateLimit
		}
		return nil
	}
	p, viaCookie, err := s.authenticate(r, ip)
	if err != nil {
		if !s.limiter.Allow(ip) {
			return errRateLimit
		}
		return err
	}
	if p.Session != nil && !p.Session.MFAVerified && !rt.Access.acceptsPendingMFA() {
		return errMFAPending
	}
	if rt.SessionOnly && p.Session == nil {
		return apperr.Forbidden("this route is for signed-in admins, not API tokens")
	}
	if viaCookie && !safeMethod(r.Method) {
		if !sameOrigin(r) {
			return errOrigin
		}
		if !iam.CheckCSRF(p.Session, r.Header.Get(CSRFHeader)) {
			return errCSRF
		}
	}
	if err := s.iam.CheckAllowlists(r.Context(), ip, p.HomeTenant); err != nil {
		return err
	}
	c.Principal = p
	c.Actor = p.Actor(ip, c.Actor.RequestID, c.Actor.UserAgent)
	if rt.Access.Kind != AccessPermission {
		return nil
	}
	tenant := r.PathValue("tenant")
	switch {
	case rt.InstallWide:
		root, err := s.iam.RootTenant(r.Context())
		if err != nil {
			return err
		}
		tenant = root.ID
	case tenant == "":
		tenant = p.HomeTenant
	}
	grants, err := s.iam.AuthorizeScoped(r.Context(), p, tenant, rt.Access.Permission, rt.Scoped)
	if err != nil {
		return err
	}
	// Only now, with access established, may the addressed tenant's own
	// allowlist answer: earlier, a 403 would reveal that the tenant exists.
	if err := iam.CheckTenantPolicy(p, ip, grants.Addressed); err != nil {
		return err
	}
	c.Perms, c.Grants, c.Tenant = grants.Tenant, grants, tenant
	return nil
}

// authenticate reads a bearer token, or the session cookie. It reports
// whether the cookie was used: only then do CSRF rules apply.
func (s *Server) authenticate(r *http.Request, ip string) (*iam.Principal, bool, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, secret, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, false, apperr.New(apperr.KindUnauthenticated, "use 'Authorization: Bearer <token>'")
		}
		p, err := s.iam.Authenticate(r.Context(), strings.TrimSpace(secret), ip)
		return p, false, err
	}
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, false, apperr.New(apperr.KindUnauthenticated, "sign in, or send an API token as 'Authorization: Bearer <token>'")
	}
	p, err := s.iam.Authenticate(r.Context(), ck.Value, ip)
	if err == nil && (p.Session == nil || p.Session.Kind != store.SessionBrowser) {
		// A CLI secret or a token pasted into a cookie skips CSRF rules; refuse.
		return nil, false, apperr.New(apperr.KindUnauthenticated, "this credential cannot be used as a cookie")
	}
	return p, true, err
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin rejects browser requests another site started. Browsers send
// Sec-Fetch-Site or Origin on state-changing requests; when neither is
// present the request is not from a browser form and the CSRF token decides.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// auditRefusal records a change an admin asked for and was refused (bad
// input, a rule, an object outside their reach): nothing changed, but the
// attempt is on record. Reads and infrastructure failures are not.
func (s *Server) auditRefusal(c *Call, rt Route, err error) {
	e := apperr.As(err)
	if rt.Method == http.MethodGet || c.Tenant == "" || c.Principal == nil || e.Kind == apperr.KindInternal || e.Kind == apperr.KindUnavailable {
		return
	}
	rec := c.Actor.Entry(c.Tenant, "api.refused", "route", rt.Method+" "+rt.Path, audit.OutcomeDenied)
	rec.Reason = e.Message
	rec.Details = map[string]any{"status": e.Status()}
	if aerr := s.st.Tx(c.R.Context(), func(q store.Queries) error { return audit.Append(c.R.Context(), q, rec) }); aerr != nil {
		s.log.Warn("auditing a refused request failed", "error", aerr.Error())
	}
}
