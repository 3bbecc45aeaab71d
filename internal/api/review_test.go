package api

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/certtest"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// An Administrator holds admin.manage but not admin.owner: taking over an
// Owner's account (new password, new authenticator) would be an escalation.
func TestAdministratorCannotTakeOverOwner(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	base := "/api/v1/tenants/" + e.rootID
	var me MeView
	e.must(200, e.owner, "GET", "/api/v1/me", nil, &me)
	_, adm := e.admin(e.rootID, "adam@steward.test", "administrator")
	helper, _ := e.admin(e.rootID, "hana@steward.test", "helpdesk")
	yes := true
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/admins/" + me.Admin.ID + "/reset-password", nil},
		{"POST", "/admins/" + me.Admin.ID + "/reset-mfa", nil},
		{"PATCH", "/admins/" + me.Admin.ID, AdminPatchRequest{Disabled: &yes}},
		{"DELETE", "/admins/" + me.Admin.ID, nil},
	} {
		if r := e.do(adm, c.method, base+c.path, c.body); r.status != http.StatusForbidden {
			t.Errorf("administrator %s %s on the owner: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	e.must(200, adm, "POST", base+"/admins/"+helper+"/reset-password", nil, nil)
	e.must(200, e.owner, "GET", "/api/v1/me", nil, nil) // the owner is untouched
}

func TestOnlyTheLatestSetupCodeWorks(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	base := "/api/v1/tenants/" + e.rootID
	var inv InviteView
	e.must(201, e.owner, "POST", base+"/admins", AdminInviteRequest{Email: "sam@steward.test", DisplayName: "Sam"}, &inv)
	var reset SetupCodeView
	e.must(200, e.owner, "POST", base+"/admins/"+inv.Admin.ID+"/reset-password", nil, &reset)
	if r := e.do("", "POST", "/api/v1/auth/setup", SetupRequest{Code: inv.SetupCode, Password: "Velvet-Harbour-Tundra-93"}); r.status != 400 {
		t.Fatalf("a replaced setup code still works: %d", r.status)
	}
	e.must(200, "", "POST", "/api/v1/auth/setup", SetupRequest{Code: reset.SetupCode, Password: "Velvet-Harbour-Tundra-93"}, nil)
	if r := e.do("", "POST", "/api/v1/auth/setup", SetupRequest{Code: reset.SetupCode, Password: "Velvet-Harbour-Tundra-94"}); r.status != 400 {
		t.Fatalf("a used setup code works again: %d", r.status)
	}
}

func TestMetricsAreInstallWide(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	c := e.customer("Metrics Customer")
	_, customerOwner := e.admin(c.ID, "cora@metrics.test", "owner")
	if r := e.do(customerOwner, "GET", "/metrics", nil); r.status != http.StatusNotFound {
		t.Fatalf("a customer's owner read install-wide metrics: %d", r.status)
	}
	if r := e.do(e.owner, "GET", "/metrics", nil); r.status != 200 || string(r.body) != "steward_up 1\n" {
		t.Fatalf("the provider's owner could not read metrics: %d %s", r.status, r.body)
	}
}

func TestTokenStopsWithItsCreator(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	base := "/api/v1/tenants/" + e.rootID
	creator, sec := e.admin(e.rootID, "tom@steward.test", "administrator")
	var nt NewTokenView
	e.must(201, sec, "POST", base+"/tokens", TokenRequest{Name: "sync", RoleID: "readonly"}, &nt)
	e.must(200, nt.Secret, "GET", "/api/v1/me", nil, nil)
	yes := true
	e.must(200, e.owner, "PATCH", base+"/admins/"+creator, AdminPatchRequest{Disabled: &yes}, nil)
	if r := e.do(nt.Secret, "GET", "/api/v1/me", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("a disabled admin's token still works: %d", r.status)
	}
}

func TestClientIPBehindTrustedProxy(t *testing.T) {
	s := New(Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	cases := []struct {
		peer, xff, want string
	}{
		{"192.0.2.1:5000", "198.51.100.1", "192.0.2.1"},                // untrusted peer: header ignored
		{"10.0.0.5:5000", "198.51.100.1", "198.51.100.1"},              // one proxy
		{"10.0.0.5:5000", "198.51.100.1, 10.0.0.9", "198.51.100.1"},    // two proxies
		{"10.0.0.5:5000", "203.0.113.9, 198.51.100.1", "198.51.100.1"}, // a client cannot push its own claim past us
		{"10.0.0.5:5000", "198.51.100.1:4444", "198.51.100.1"},         // port added by the proxy
		{"10.0.0.5:5000", "[2001:db8::1]", "2001:db8::1"},              // bracketed IPv6
		{"10.0.0.5:5000", "garbage", ""},                               // unreadable: fail closed
		{"10.0.0.5:5000", "", ""},                                      // missing: fail closed
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := s.clientIP(r); got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client %q, want %q", c.peer, c.xff, got, c.want)
		}
	}
}

// TestPresentedCertificateBehindTrustedProxy: the access check judges the
// device's certificate as the MDM endpoints find it. Behind a trusted proxy
// that forwards certificates, the TLS peer's own certificate is the proxy's
// and the header's is the device's; elsewhere the TLS peer's is the device's.
func TestPresentedCertificateBehindTrustedProxy(t *testing.T) {
	s := New(Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ClientCertHeader: "X-Client-Cert"})
	edge, _ := certtest.IssueUntil(t, "edge-proxy", false, time.Now().Add(time.Hour), x509.KeyUsageDigitalSignature, nil, nil)
	device, _ := certtest.IssueUntil(t, "steward-device-x", false, time.Now().Add(time.Hour), x509.KeyUsageDigitalSignature, nil, nil)
	forwarded := url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: device.Raw})))
	for _, c := range []struct {
		what, peer string
		tlsCert    *x509.Certificate
		header     string
		want       string // the common name judged, "" for none
		wantStatus int    // of the refusal, 0 when none
	}{
		{"a trusted proxy with its own certificate, forwarding the device's", "10.0.0.5:443", edge, forwarded, "steward-device-x", 0},
		{"a trusted proxy forwarding the device's", "10.0.0.5:443", nil, forwarded, "steward-device-x", 0},
		{"a trusted proxy forwarding none", "10.0.0.5:443", edge, "", "", 0},
		{"the device itself", "192.0.2.7:443", device, "", "steward-device-x", 0},
		{"a header from a client that is no proxy", "192.0.2.7:443", nil, forwarded, "", http.StatusForbidden},
	} {
		r := httptest.NewRequest("GET", "/api/v1/access/acme/check", nil)
		r.RemoteAddr = c.peer
		if c.tlsCert != nil {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.tlsCert}}
		}
		if c.header != "" {
			r.Header.Set("X-Client-Cert", c.header)
		}
		got, err := s.presentedCertificate(r)
		name := ""
		if got != nil {
			name = got.Subject.CommonName
		}
		status := 0
		if e := apperr.As(err); err != nil && e != nil {
			status = e.Status()
		}
		if name != c.want || status != c.wantStatus {
			t.Errorf("%s: judged %q (%v), want %q (status %d)", c.what, name, err, c.want, c.wantStatus)
		}
	}
}
