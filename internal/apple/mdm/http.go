package mdm

import (
	"cmp"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/apple/scep"
	"github.com/steward-mdm/steward/internal/iam/throttle"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/proxy"
	"github.com/steward-mdm/steward/internal/store"
)

// The content types devices send, per Apple's protocol.
const (
	checkinType = "application/x-apple-aspen-mdm-checkin"
	connectType = "application/x-apple-aspen-mdm"
)

// maxResultBody bounds a command result (an app list of a few thousand
// apps fits comfortably); check-ins have mdmproto.MaxCheckinBytes.
const maxResultBody = 4 << 20

// HTTPConfig wires the device-facing endpoints.
type HTTPConfig struct {
	// Topic returns the APNs topic of the tenant's push certificate.
	Topic func(ctx context.Context, tenantID string) (string, error)
	Log   *slog.Logger
	// ClientCertHeader, when set, names a header in which a trusted reverse
	// proxy that terminates TLS passes the device's client certificate (PEM,
	// URL-escaped, as nginx's $ssl_client_escaped_cert). Off by default.
	ClientCertHeader string
	// EnrolmentRateLimit is how many requests a second each client
	// address may make to the enrolment pages, after a burst of
	// enrolmentRequestBurst (limited); 0 sets no limit.
	EnrolmentRateLimit float64
	// Proxies are the reverse proxies whose certificate header and
	// X-Forwarded-For are believed.
	Proxies proxy.Trusted
}

// Handler serves, under one mux:
//
//	GET  /enrol/{secret}             the invitation page (plain words, the notice)
//	POST /enrol/{secret}             accept the notice
//	GET  /enrol/{secret}/profile     the signed .mobileconfig
//	GET  /.well-known/com.apple.remotemanagement, /enrol/account…
//	                                 account-driven User Enrollment (account.go)
//	     /scep/{tenant}              SCEP (GetCACaps, GetCACert, PKIOperation)
//	PUT  /mdm/{tenant}/checkin       check-in messages
//	PUT  /mdm/{tenant}/connect       command results and the next command
//
// Device-facing errors are 400, 403, 404, 410, 413 or 5xx, never 401: a 401
// can make a device unenrol.
func (s *Service) Handler(cfg HTTPConfig) (http.Handler, error) {
	if cfg.Log == nil {
		cfg.Log = s.log
	}
	scepSrv, err := scep.NewServer(scep.Config{
		Store:             s.st,
		TenantFromRequest: func(r *http.Request) string { return r.PathValue("tenant") },
		CA:                s.tenantCA,
		OnIssued:          s.BindIssuedCertificate,
		OnRefused:         s.auditSCEPRefusal,
		ClientIP:          cfg.Proxies.ClientIP,
		Now:               s.now,
		Logger:            cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	h := &httpHandler{s: s, cfg: cfg}
	if cfg.EnrolmentRateLimit > 0 {
		h.clients = throttle.NewLimiter(cfg.EnrolmentRateLimit, enrolmentRequestBurst, 100_000)
	}
	mux := http.NewServeMux()
	mux.Handle("/scep/{tenant}", scepSrv.Handler())
	mux.HandleFunc("GET /enrol/{secret}", h.limited(h.invitation))
	mux.HandleFunc("POST /enrol/{secret}", h.limited(h.accept))
	mux.HandleFunc("GET /enrol/{secret}/profile", h.limited(func(w http.ResponseWriter, r *http.Request) { h.profile(w, r, r.PathValue("secret"), false) }))
	mux.HandleFunc("GET "+wellKnownPath, h.limited(h.discovery))
	mux.HandleFunc("POST "+accountPath, h.limited(h.accountEnrolment))
	mux.HandleFunc("GET "+signInPath, h.limited(h.signIn))
	mux.HandleFunc("POST "+signInPath, h.limited(h.signInCode))
	mux.HandleFunc("POST /enrol/{secret}/account-token", h.limited(h.accountToken))
	for _, m := range []string{"PUT", "POST"} {
		mux.HandleFunc(m+" /mdm/{tenant}/checkin", h.device("checkin", checkinType, mdmproto.MaxCheckinBytes, s.Checkin))
		mux.HandleFunc(m+" /mdm/{tenant}/connect", h.device("connect", connectType, maxResultBody, s.Connect))
	}
	return mux, nil
}

// tenantCA opens a tenant's device CA for SCEP. It never creates one: the
// first enrolment profile does, so a device request that is refused leaves
// nothing behind.
func (s *Service) tenantCA(ctx context.Context, tenantID string) (*scep.CA, error) {
	tc, err := s.tenantTrust(ctx, tenantID, false)
	if err != nil {
		return nil, err
	}
	return tc.ca, nil
}

// tenantTrust is a tenant's CA with the pool and chain cache that verify
// its devices' signatures.
type tenantTrust struct {
	ca    *scep.CA
	roots *x509.CertPool
	cache *mdmproto.ChainCache
	// confirmed is when the CA was last read or found still stored (Unix
	// nanoseconds): another node may have deleted the tenant since.
	confirmed atomic.Int64

	mu         sync.Mutex
	signerCert *x509.Certificate
	signerKey  crypto.Signer
}

// profileSigner returns a current profile-signing certificate, issuing a
// new one when the last is within an hour of expiry.
func (t *tenantTrust) profileSigner(now time.Time) (*x509.Certificate, crypto.Signer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.signerCert == nil || now.Add(time.Hour).After(t.signerCert.NotAfter) {
		cert, key, err := t.ca.ProfileSigner(now)
		if err != nil {
			return nil, nil, err
		}
		t.signerCert, t.signerKey = cert, key
	}
	return t.signerCert, t.signerKey, nil
}

// tenantTrust opens a tenant's CA, creating it when create is set (and
// otherwise answering scep.ErrNoCA). Opened CAs are cached: unsealing and
// parsing the key on every device request would cost more than the request.
func (s *Service) tenantTrust(ctx context.Context, tenantID string, create bool) (*tenantTrust, error) {
	// Tenant IDs are UUIDs; anything else (a NUL byte, invalid UTF-8) is
	// refused before PostgreSQL turns it into an error of its own.
	if uuid.Validate(tenantID) != nil {
		return nil, scep.ErrUnknownTenant
	}
	if tc, ok := s.cas.Load(tenantID); ok {
		if tc, err := s.stillStored(ctx, tenantID, tc.(*tenantTrust)); tc != nil || err != nil {
			return tc, err
		}
	}
	if !create {
		// Requests for a tenant without a CA (unknown, or no profile yet)
		// are refused here, outside the lock all tenants share.
		if _, err := s.st.Read().Tenants().Get(ctx, tenantID); errors.Is(err, store.ErrNotFound) {
			return nil, scep.ErrUnknownTenant
		} else if err != nil {
			return nil, err
		}
		if ok, err := scep.HasCA(ctx, s.st.Read().Settings(), tenantID); err != nil || !ok {
			return nil, cmp.Or(err, scep.ErrNoCA)
		}
	}
	// One loader at a time: the first enrolments of a tenant arrive together,
	// and each would otherwise generate (and throw away) an RSA CA key.
	s.casMu.Lock()
	defer s.casMu.Unlock()
	if tc, ok := s.cas.Load(tenantID); ok {
		return tc.(*tenantTrust), nil
	}
	t, err := s.st.Read().Tenants().Get(ctx, tenantID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, scep.ErrUnknownTenant
	}
	if err != nil {
		return nil, err
	}
	var ca *scep.CA
	if create {
		ca, err = scep.LoadOrCreateCA(ctx, s.st.Read().Settings(), s.sealer, t.ID, t.Name, s.clock())
	} else {
		ca, err = scep.OpenCA(ctx, s.st.Read().Settings(), s.sealer, t.ID, t.Name)
	}
	if err != nil {
		return nil, err
	}
	tc := &tenantTrust{ca: ca, roots: ca.Roots(), cache: &mdmproto.ChainCache{}}
	tc.confirmed.Store(s.clock().UnixNano())
	s.cas.Store(tenantID, tc)
	return tc, nil
}

// trustRecheck is how long a node trusts a cached tenant CA before it
// reads that the CA is still stored: a tenant deleted on another node stops
// being served (and having keys made for it) here within it.
const trustRecheck = time.Minute

// stillStored returns cached tc, or nil once its CA is no longer stored
// (its tenant deleted on another node), dropping it from the cache.
func (s *Service) stillStored(ctx context.Context, tenantID string, tc *tenantTrust) (*tenantTrust, error) {
	now := s.clock()
	if since := now.Sub(time.Unix(0, tc.confirmed.Load())); since >= 0 && since < trustRecheck {
		return tc, nil
	}
	ok, err := scep.HasCA(ctx, s.st.Read().Settings(), tenantID)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.cas.CompareAndDelete(tenantID, tc)
		return nil, nil
	}
	tc.confirmed.Store(now.UnixNano())
	return tc, nil
}

var errNotSigned = apperr.Forbidden("the request is not signed by a device certificate of this tenant")

type httpHandler struct {
	s   *Service
	cfg HTTPConfig
	// clients limits each client address's requests to the enrolment
	// pages (limited); nil when HTTPConfig sets no limit.
	clients *throttle.Limiter
}

// enrolmentRequestBurst is the burst of HTTPConfig.EnrolmentRateLimit.
const enrolmentRequestBurst = 100

// limited refuses with 429 a client address past its share of the
// enrolment pages. MDM check-ins and SCEP are not limited so: devices
// answer pushes in waves, and a refused check-in only delays them.
func (h *httpHandler) limited(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.clients != nil && !h.clients.AllowAt(h.cfg.Proxies.ClientIP(r), h.s.clock()) {
			w.Header().Set("Retry-After", "60")
			http.Error(w, "Too many requests from this address; please try again in a minute.", http.StatusTooManyRequests)
			return
		}
		next(w, r)
	}
}

// device wraps a device endpoint: bounded body, identity from the
// Mdm-Signature (a detached CMS over the body by a certificate of the
// tenant's CA), then the service call. Each answer is counted by its
// outcome (newDeviceRequests).
func (h *httpHandler) device(endpoint, contentType string, maxBody int64, call func(context.Context, *x509.Certificate, []byte) ([]byte, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		tenant, outcome := unknownTenantLabel, "ok"
		defer func() { h.s.deviceRequests.WithLabelValues(tenant, endpoint, outcome).Inc() }()
		fail := func(err error) { outcome = h.fail(w, r, err) }
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != contentType {
			fail(apperr.New(apperr.KindUnsupportedType, "send %s", contentType))
			return
		}
		// The tenant before the body: a request for none is not worth
		// reading megabytes of.
		trust, err := h.s.tenantTrust(ctx, r.PathValue("tenant"), false)
		if errors.Is(err, scep.ErrUnknownTenant) {
			fail(apperr.NotFound("tenant"))
			return
		}
		if err == nil || errors.Is(err, scep.ErrNoCA) {
			tenant = r.PathValue("tenant") // found: a label bounded by the tenants
		}
		if errors.Is(err, scep.ErrNoCA) {
			fail(errNotSigned) // no certificate can chain to a CA that does not exist
			return
		}
		if err != nil {
			fail(err)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			fail(apperr.New(apperr.KindTooLarge, "the body is larger than %d bytes", maxBody))
			return
		}
		if err != nil {
			fail(apperr.Invalid("the body could not be read"))
			return
		}
		cert, err := h.identify(r, body, trust)
		if errors.Is(err, errTwoDevices) {
			h.s.auditRefusal(ctx, tenant, cert, h.cfg.Proxies.ClientIP(r), withAnotherDevice)
		}
		if err != nil {
			fail(err)
			return
		}
		out, err := call(ctx, cert, body)
		if errors.Is(err, ErrWrongDevice) {
			h.s.auditRefusal(ctx, tenant, cert, h.cfg.Proxies.ClientIP(r), namedAnotherDevice)
		}
		if err != nil {
			fail(err)
			return
		}
		if out == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		if len(out) > 0 && out[0] == '{' {
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", "application/xml")
		}
		_, _ = w.Write(out)
	}
}

// identify finds the device certificate behind a request: the Mdm-Signature
// (a detached CMS over the body), the TLS client certificate, or a trusted
// proxy's header. Each must chain to the tenant's CA. When a request
// carries several they must be of one enrolment (the subject names it): a
// device presents one identity, so two devices' are a copied key or a
// forwarded header gone wrong. Two of one enrolment are allowed: a device
// that just renewed its identity may still be on a TLS connection made
// with the old one. Refusing two devices' certificates, it returns the one
// it verified, whose device the refusal is audited under.
func (h *httpHandler) identify(r *http.Request, body []byte, trust *tenantTrust) (*x509.Certificate, error) {
	refused := errNotSigned
	var presented []*x509.Certificate
	// Through a trusted proxy that forwards certificates, the TLS peer is
	// the proxy: a client certificate it presents is its own, no device's.
	// One that forwards none may pass TLS through (the peer's certificate
	// is the device's) or present its own, which is then none of the
	// tenant's devices' and is set aside.
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		fromProxy := h.cfg.Proxies.FromProxy(r)
		peer := r.TLS.PeerCertificates[0]
		if !fromProxy || (h.cfg.ClientCertHeader == "" && h.deviceCertificate(peer, trust)) {
			presented = append(presented, peer)
		}
	}
	forwarded, err := h.cfg.Proxies.ForwardedCertificate(r, h.cfg.ClientCertHeader)
	if err != nil {
		return nil, refused
	}
	if forwarded != nil {
		presented = append(presented, forwarded)
	}
	sig := r.Header.Get("Mdm-Signature")
	var cert *x509.Certificate
	switch {
	case sig != "":
		// The signature's check includes the chain to the tenant's CA.
		if cert, err = mdmproto.VerifyMdmSignatureCached(sig, body, trust.roots, h.s.clock(), trust.cache); err != nil {
			return nil, refused
		}
	case len(presented) > 0:
		cert = presented[0]
		if !h.deviceCertificate(cert, trust) {
			return nil, refused
		}
	default:
		return nil, refused
	}
	for _, other := range presented {
		if other.Equal(cert) || other.Subject.CommonName == cert.Subject.CommonName {
			continue
		}
		if !h.deviceCertificate(other, trust) {
			return nil, refused // not a device's of this tenant: no second device to report
		}
		return cert, errTwoDevices // the first one verified, for the audit
	}
	return cert, nil
}

// deviceCertificate says whether cert is a device identity of the tenant:
// a client certificate that chains to its CA, valid now.
func (h *httpHandler) deviceCertificate(cert *x509.Certificate, trust *tenantTrust) bool {
	_, err := cert.Verify(x509.VerifyOptions{Roots: trust.roots, CurrentTime: h.s.clock(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err == nil
}

// fail answers a device without ever using 401, and says why it refused
// (deviceOutcome).
func (h *httpHandler) fail(w http.ResponseWriter, r *http.Request, err error) string {
	status := http.StatusInternalServerError
	if e := apperr.As(err); e != nil {
		status = e.Status()
		if status == http.StatusUnauthorized {
			status = http.StatusForbidden
		}
	}
	if status >= 500 {
		h.cfg.Log.ErrorContext(r.Context(), "device request failed", "path", r.Pattern, "error", err.Error())
	}
	if errors.Is(err, ErrDeviceLeft) {
		// Apple's unrecognized-device error (mdm/errors/unrecognized.device.yaml,
		// iOS 17 and macOS 14): the device removes its enrolment, where a
		// bare 403 leaves the employee to find the profile and remove it.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(unrecognizedDevice))
		return deviceOutcome(err, status)
	}
	http.Error(w, http.StatusText(status), status)
	return deviceOutcome(err, status)
}

// unrecognizedDevice is the body of a 403 that tells a device to unenrol.
const unrecognizedDevice = `{"code":"com.apple.unrecognized.device"}`

var invitationPage = template.Must(template.New("invite").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Notice.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}pre{white-space:pre-wrap;font-family:inherit}</style></head>
<body>{{if .Others}}<nav>Also in:{{range .Others}} <a href="{{.Href}}" hreflang="{{.Language}}" lang="{{.Language}}">{{.Language}}</a>{{end}}</nav>{{end}}
<h1>{{.Notice.Title}}</h1>
{{if .Changed}}<p><strong>What your organisation collects or can do changed while you were reading, so nothing was accepted.</strong> Please read the current version below before you decide.</p>{{end}}
<h2>In plain words</h2><section{{if ne .Lang "en"}} lang="en"{{end}}>{{range .Summary}}{{if .Heading}}<h3>{{.Heading}}</h3>
{{else if .Paragraph}}<p>{{.Paragraph}}</p>
{{else}}<ul>{{range .List}}<li>{{if .Label}}<strong>{{.Label}}</strong>{{if .Text}}: {{end}}{{end}}{{.Text}}</li>{{end}}</ul>
{{end}}{{end}}</section>
<h2>The notice (version {{.Notice.Version}})</h2><pre>{{.Notice.Body}}</pre>
{{if .Retry}}<p><strong>The last attempt to enrol did not finish.</strong> You can try again with this link.</p>{{end}}
{{if and .Accepted .Account}}<form method="post" action="{{.Secret}}/account-token"><button type="submit">Continue enrolment on this device</button></form>
{{else if and .Accepted .UserEnrollment}}<p>Now enrol on the iPhone, iPad or Mac itself: open Settings &gt; General &gt; VPN &amp; Device Management
(on a Mac: System Settings &gt; General &gt; Device Management), choose <strong>Sign In to Work or School Account</strong>,
and enter your work e-mail address. When asked for the enrolment code, enter <code>{{.Secret}}</code>.</p>
{{else if .Accepted}}<p><a href="{{.Secret}}/profile">Download the enrolment profile</a>, then install it in Settings.</p>
{{else}}<form method="post"{{if .Account}} action="{{.Secret}}?account=1"{{end}}><input type="hidden" name="language" value="{{.Notice.Language}}"><input type="hidden" name="notice_version" value="{{.Notice.Version}}"><input type="hidden" name="summary_sha256" value="{{.SummarySHA256}}">
{{if .AskWipe}}<p><label><input type="checkbox" name="allow_full_wipe" value="yes"> Also allow my organisation to erase this whole device if it is lost or stolen.</label></p>{{end}}
<button type="submit">I have read this and accept</button></form>{{end}}
</body></html>
`))

func (h *httpHandler) invitation(w http.ResponseWriter, r *http.Request) {
	preference := strings.TrimSpace(r.URL.Query().Get("lang")) // the page's own language links
	if preference == "" {
		preference = r.Header.Get("Accept-Language")
	}
	inv, err := h.s.Invitation(r.Context(), r.PathValue("secret"), preference)
	if err != nil {
		h.page(w, r, err)
		return
	}
	h.render(w, inv, r.PathValue("secret"), r.URL.Query().Get("account") == "1")
}

func (h *httpHandler) render(w http.ResponseWriter, inv Invitation, secret string, account bool) {
	h.renderStatus(w, inv, secret, account, http.StatusOK, false)
}

// renderStatus shows the invitation page; changed says the person's
// acceptance was refused because what it shows changed while they read.
func (h *httpHandler) renderStatus(w http.ResponseWriter, inv Invitation, secret string, account bool, status int, changed bool) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	formAction := "'self'"
	if account {
		formAction += " apple-remotemanagement-user-login:" // the sign-in ends by a redirect there
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action "+formAction)
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = invitationPage.Execute(w, map[string]any{"Lang": inv.Notice.Language, "Notice": inv.Notice, "Summary": privacy.SummaryBlocks(inv.Summary), "Changed": changed,
		"SummarySHA256": privacy.TextDigest(inv.Summary), "Accepted": inv.Consented, "Retry": inv.Enrolment.State == store.EnrolmentUsed, "AskWipe": inv.AskWipe, "Secret": secret,
		"Account": account && inv.Enrolment.UserEnrollment, "UserEnrollment": inv.Enrolment.UserEnrollment,
		"Others": otherLanguages(inv, account)})
}

// languageLink is a link to the invitation page in another language.
type languageLink struct{ Language, Href string }

// otherLanguages links the page in the languages of the current notice
// other than the one shown, keeping the account-driven mode.
func otherLanguages(inv Invitation, account bool) []languageLink {
	var out []languageLink
	for _, l := range inv.Languages {
		if l == inv.Notice.Language {
			continue
		}
		q := url.Values{"lang": {l}}
		if account {
			q.Set("account", "1")
		}
		out = append(out, languageLink{Language: l, Href: "?" + q.Encode()})
	}
	return out
}

func (h *httpHandler) accept(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		h.page(w, r, apperr.Invalid("the form could not be read"))
		return
	}
	secret := r.PathValue("secret")
	version, _ := strconv.ParseInt(r.PostForm.Get("notice_version"), 10, 64)
	_, err := h.s.Accept(r.Context(), secret, AcceptInput{Language: r.PostForm.Get("language"), NoticeVersion: version,
		SummarySHA256: r.PostForm.Get("summary_sha256"), AllowFullWipe: r.PostForm.Get("allow_full_wipe") == "yes"}, h.cfg.Proxies.ClientIP(r))
	status, changed := http.StatusOK, errors.Is(err, errNoticeChanged) || errors.Is(err, privacy.ErrSummaryChanged)
	if changed {
		// Nothing was recorded: the person reads what now holds and
		// decides again, rather than meeting a dead end.
		status = http.StatusConflict
	} else if err != nil {
		h.page(w, r, err)
		return
	}
	inv, err := h.s.Invitation(r.Context(), secret, r.PostForm.Get("language"))
	if err != nil {
		h.page(w, r, err)
		return
	}
	h.renderStatus(w, inv, secret, r.URL.Query().Get("account") == "1", status, changed)
}

func (h *httpHandler) profile(w http.ResponseWriter, r *http.Request, secret string, byAccount bool) {
	ctx := r.Context()
	e, err := h.s.openEnrolment(ctx, h.s.st.Read(), secret, EnrolmentAccepted, enrolmentUnfinished)
	if err == nil {
		err = checkHandOut(e, byAccount)
	}
	if err == nil && !h.s.downloads.AllowAt(e.ID, h.s.clock()) {
		err = apperr.New(apperr.KindRateLimited, "This profile was downloaded too often in the last hour; please try again later.")
	}
	if err != nil {
		h.page(w, r, err)
		return
	}
	topic, err := h.cfg.Topic(ctx, e.TenantID)
	if errors.Is(err, ErrNoPushCertificate) {
		err = apperr.Conflict("this organisation has not set up Apple push notifications yet; ask your IT team")
	}
	if err != nil {
		h.page(w, r, err)
		return
	}
	signed, err := h.s.Profile(ctx, e, topic)
	if err != nil {
		h.page(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="enrol.mobileconfig"`)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(signed)
}

// page answers a person (not a device) with a short plain-text error: the
// message alone, never an internal cause, which goes to the log.
func (h *httpHandler) page(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := pageError(err)
	if status >= 500 {
		h.cfg.Log.ErrorContext(r.Context(), "enrolment page failed", "path", r.Pattern, "error", err.Error())
	}
	http.Error(w, msg, status)
}

// pageError is what a person is told of err, and its status.
func pageError(err error) (int, string) {
	if errors.Is(err, store.ErrInvalidText) {
		return http.StatusBadRequest, "The link or the form contains characters that are not allowed."
	}
	e := apperr.As(err)
	if e.Status() >= 500 {
		return e.Status(), "Something went wrong; please try again later."
	}
	return e.Status(), e.Message
}
