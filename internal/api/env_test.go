package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/fleet"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/iam/totp"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// testClock lets MFA tests move time so that each TOTP code falls in a
// fresh step (codes cannot be replayed within a step).
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a running API over a real store.
type env struct {
	t      *testing.T
	st     store.Store
	iam    *iam.Service
	priv   *privacy.Service
	srv    *Server
	ts     *httptest.Server
	clock  *testClock
	logs   *syncBuffer
	totp   map[string][]byte // email -> TOTP secret
	rootID string
	owner  string // owner's CLI session secret
}

const ownerEmail, ownerPassword = "owner@steward.test", "Quasar-Lantern-Mosaic-47"

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	ctx := context.Background()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := secrets.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.LoadOrCreateSigner(ctx, st, sealer)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := &testClock{t: time.Now().UTC()}
	svc := iam.New(st, sealer, iam.DefaultConfig(), iam.WithClock(clock.now), iam.WithLogger(log))
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "steward_up 1\n") })
	priv := privacy.NewService(st, keys.New(sealer), signer, log)
	priv.SetClock(clock.now)
	mdmSvc := mdm.New(st, priv, sealer, mdm.Config{PublicURL: "https://steward.test"}, log)
	mdmSvc.SetClock(clock.now)
	fl := fleet.Wire(st, priv, mdmSvc, sealer, log)
	srv := New(Options{Store: st, IAM: svc, Signer: signer, Privacy: priv, MDM: mdmSvc, Logger: log, AuthRate: 1000, AuthBurst: 1000, Metrics: metrics,
		Devices: fl.Devices, Actions: fl.Actions, Compliance: fl.Compliance,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	ts := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(ts.Close)
	e := &env{t: t, st: st, iam: svc, priv: priv, srv: srv, ts: ts, clock: clock, logs: logs, totp: map[string][]byte{}}
	owner, err := svc.BootstrapDirect(ctx, iam.BootstrapInput{Organisation: "Test Provider", Email: ownerEmail,
		DisplayName: "Olive Owner", Password: ownerPassword})
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	e.rootID = owner.TenantID
	e.owner = e.signIn(ownerEmail, ownerPassword)
	return e
}

// response is a decoded HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

func (r response) errorCode() string {
	var eb ErrorBody
	_ = json.Unmarshal(r.body, &eb)
	return eb.Error.Code
}

type reqOpt func(*http.Request)

func fromIP(ip string) reqOpt { return func(r *http.Request) { r.Header.Set("X-Forwarded-For", ip) } }

// do sends a request with a bearer secret ("" for none); body is JSON-encoded
// unless it is already []byte.
func (e *env) do(secret, method, path string, body any, opts ...reqOpt) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, ok := body.([]byte)
		if !ok {
			var err error
			if raw, err = json.Marshal(body); err != nil {
				e.t.Fatal(err)
			}
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	// The test server's peer is a trusted proxy; it names the client.
	req.Header.Set("X-Forwarded-For", "127.0.0.1")
	for _, o := range opts {
		o(req)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// must sends a request and fails the test unless the status is want.
func (e *env) must(want int, secret, method, path string, body any, out any) response {
	e.t.Helper()
	r := e.do(secret, method, path, body)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	if out != nil {
		r.decode(e.t, out)
	}
	return r
}

// code returns a TOTP code for the admin in a step no earlier code used.
func (e *env) code(email string) string {
	e.clock.advance(31 * time.Second)
	return totp.Code(e.totp[email], e.clock.now())
}

// signIn logs in as a CLI client, enrolling an authenticator the first time,
// and returns the full session's secret.
func (e *env) signIn(email, pw string) string {
	e.t.Helper()
	var lv LoginView
	e.must(200, "", "POST", "/api/v1/auth/login", LoginRequest{Email: email, Password: pw, Client: "cli"}, &lv)
	switch lv.State {
	case "mfa_enrollment_required":
		var en MFAEnrollView
		e.must(200, lv.Secret, "POST", "/api/v1/me/mfa/enroll", nil, &en)
		secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
		if err != nil {
			e.t.Fatal(err)
		}
		e.totp[email] = secret
		var conf MFAConfirmView
		e.must(200, lv.Secret, "POST", "/api/v1/me/mfa/confirm", CodeRequest{Code: e.code(email)}, &conf)
		if len(conf.RecoveryCodes) != 10 || conf.Login == nil || conf.Login.State != "complete" {
			e.t.Fatalf("MFA confirmation: %+v", conf)
		}
		return conf.Login.Secret
	case "mfa_required":
		var done LoginView
		e.must(200, lv.Secret, "POST", "/api/v1/auth/mfa", MFARequest{Code: e.code(email)}, &done)
		return done.Secret
	default:
		e.t.Fatalf("login state %q", lv.State)
		return ""
	}
}

// customer creates a customer tenant under the root provider.
func (e *env) customer(name string) TenantView {
	e.t.Helper()
	var tv TenantView
	e.must(201, e.owner, "POST", "/api/v1/tenants/"+e.rootID+"/customers", TenantCreateRequest{Name: name}, &tv)
	return tv
}

// admin invites an admin into tenantID with roleID, lets them set a
// password and signs them in. It returns their ID and session secret.
func (e *env) admin(tenantID, email, roleID string) (string, string) {
	e.t.Helper()
	var inv InviteView
	e.must(201, e.owner, "POST", "/api/v1/tenants/"+tenantID+"/admins", AdminInviteRequest{Email: email, DisplayName: "Test " + strings.Split(email, "@")[0]}, &inv)
	if roleID != "" {
		e.must(201, e.owner, "POST", "/api/v1/tenants/"+tenantID+"/assignments", AssignmentRequest{AdminID: inv.Admin.ID, RoleID: roleID}, nil)
	}
	pw := "Velvet-Harbour-Tundra-93"
	e.must(200, "", "POST", "/api/v1/auth/setup", SetupRequest{Code: inv.SetupCode, Password: pw}, nil)
	return inv.Admin.ID, e.signIn(email, pw)
}

func (e *env) auditHead(tenantID string) store.AuditHead {
	e.t.Helper()
	h, err := e.st.Read().Audit().Head(context.Background(), tenantID)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// changesSince fails the test when the tenant's audit log gained anything
// after seq but records of refused requests: refusals are audited, and
// nothing else may have happened.
func (e *env) changesSince(tenantID string, seq int64) int {
	e.t.Helper()
	changes := 0
	err := e.st.Read().Audit().Scan(context.Background(), tenantID, seq, func(a store.AuditEntry) error {
		if a.Action != "api.refused" || a.Outcome != "denied" {
			changes++
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return changes
}
