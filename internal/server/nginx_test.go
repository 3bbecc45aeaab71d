package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// nginxConf puts Steward's access check in front of a sample app with
// auth_request, as the conditional-access documentation suggests. The
// {{…}} placeholders are filled by startNginx.
const nginxConf = `daemon off;
master_process off;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log notice;
events { worker_connections 64; }
http {
    access_log {{dir}}/access.log;
    client_body_temp_path {{dir}}/client_body;
    proxy_temp_path {{dir}}/proxy;
    fastcgi_temp_path {{dir}}/fastcgi;
    uwsgi_temp_path {{dir}}/uwsgi;
    scgi_temp_path {{dir}}/scgi;
    default_type text/plain;
    server {
        listen {{listen}} ssl;
        ssl_certificate {{dir}}/proxy.crt;
        ssl_certificate_key {{dir}}/proxy.key;
        # Ask for the device's identity certificate but do not judge it: Steward does.
        ssl_verify_client optional_no_ca;
        location / {
            auth_request /_steward_check;
            # Set before the 403 is returned, so it survives the error_page redirect.
            auth_request_set $steward_reason $upstream_http_x_steward_access_reason;
            error_page 403 /_access_denied;
            proxy_pass {{app}};
        }
        location = /_steward_check {
            internal;
            proxy_pass {{steward}}/api/v1/access/{{tenant}}/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            # Replaces any X-SSL-Client-Cert the client sent; empty (so absent) without a certificate.
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
            proxy_set_header X-Steward-Device-Token $http_x_steward_device_token;
            proxy_ssl_verify off;
        }
        location = /_access_denied {
            internal;
            add_header X-Access-Reason $steward_reason always;
            return 403 "Access denied: $steward_reason\n";
        }
    }
}
`

// TestConditionalAccessThroughNginx: Debian's nginx asks Steward, through
// auth_request, whether each device may reach a sample app. A compliant
// device (by certificate or device token) passes; a device without a
// passcode, without identity or with a forged certificate header is
// refused with the reason; once fixed it passes. Both engines run: nginx
// starts in milliseconds, so the second run costs little.
func TestConditionalAccessThroughNginx(t *testing.T) {
	bin := findNginx(t)
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var served atomic.Int64
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served.Add(1)
			io.WriteString(w, "corporate data\n")
		}))
		t.Cleanup(app.Close)

		// Failing devices are marked noncompliant at once (no grace period).
		ladder := compliance.Ladder{{Action: compliance.StepNotify}, {Action: compliance.StepMarkNoncompliant}}
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Passcode",
			Rules: compliance.Rules{PasscodeRequired: true}, Ladder: &ladder}, nil)
		good, goodID := f.enrol("corporate", "", "", nil)
		risky, riskyID := f.enrol("corporate", "", "", func(d *sim.Device) { d.NoPasscode = true })
		var tok api.AccessTokenView
		f.must(201, f.owner, "POST", f.path("/devices/"+goodID+"/access-token"), api.AccessTokenRequest{}, &tok)

		proxyURL, roots := startNginx(t, bin, f.ts.URL, f.tenant, app.URL)
		get := func(cert *tls.Certificate, headers ...string) reply {
			t.Helper()
			cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
			if cert != nil {
				cfg.Certificates = []tls.Certificate{*cert}
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			defer client.CloseIdleConnections()
			req, err := http.NewRequest("GET", proxyURL+"/reports/q3.pdf", nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("through nginx: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return reply{status: resp.StatusCode, header: resp.Header, body: body}
		}
		// expect checks one request through nginx, and that the app was
		// reached exactly when access was allowed.
		expect := func(name string, r reply, before int64, allowed bool, reason string) {
			t.Helper()
			reached := served.Load() > before
			switch {
			case allowed && (r.status != 200 || string(r.body) != "corporate data\n" || !reached):
				t.Errorf("%s: %d %q (app reached: %v), want 200 with the app's data", name, r.status, r.body, reached)
			case !allowed && (r.status != 403 || reached || !strings.HasPrefix(string(r.body), "Access denied: ")):
				t.Errorf("%s: %d %q (app reached: %v), want 403 from nginx", name, r.status, r.body, reached)
			case !allowed && !strings.Contains(r.header.Get("X-Access-Reason"), reason):
				t.Errorf("%s: reason header %q, want it to mention %q", name, r.header.Get("X-Access-Reason"), reason)
			case !allowed && !strings.Contains(string(r.body), reason):
				t.Errorf("%s: body %q, want it to mention %q", name, r.body, reason)
			}
		}

		goodCert, riskyCert := good.TLSCertificate(), risky.TLSCertificate()
		for _, c := range []struct {
			name    string
			cert    *tls.Certificate
			headers []string
			allowed bool
			reason  string
		}{
			{name: "compliant device certificate", cert: &goodCert, allowed: true},
			{name: "device without a passcode", cert: &riskyCert, reason: "passcode"},
			{name: "no identity", reason: "No device identity"},
			{name: "compliant device token", headers: []string{api.DeviceTokenHeader, tok.Token}, allowed: true},
			{name: "unknown device token", headers: []string{api.DeviceTokenHeader, tok.Token + "x"}, reason: "token"},
			// nginx replaces the header with the (empty) certificate of the connection.
			{name: "forged certificate header", headers: []string{"X-SSL-Client-Cert", sim.EscapedPEM(good.Certificate())}, reason: "No device identity"},
		} {
			before := served.Load()
			expect(c.name, get(c.cert, c.headers...), before, c.allowed, c.reason)
		}

		// The employee sets a passcode; after a sync the device passes.
		risky.NoPasscode = false
		f.must(201, f.owner, "POST", f.path("/devices/"+riskyID+"/actions"),
			api.DeviceActionRequest{Action: actions.Sync, Reason: "employee fixed the passcode"}, nil)
		f.poll(risky)
		before := served.Load()
		expect("fixed device", get(&riskyCert), before, true, "")
	})
}

// findNginx returns Debian's nginx; without it the test is skipped, except
// under CI where the live check is required.
func findNginx(t *testing.T) string {
	t.Helper()
	for _, candidate := range []string{"/usr/sbin/nginx", "nginx"} {
		if path, err := exec.LookPath(candidate); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("nginx is required under CI=true (apt-get install nginx)")
	}
	t.Skip("nginx is not installed (apt-get install nginx); skipping the live conditional-access test")
	return ""
}

// startNginx runs nginx as the current user with every path in a temporary
// directory, on a free loopback port, until the test ends. It returns the
// proxy's URL and the pool that trusts its self-signed certificate.
func startNginx(t *testing.T, bin, stewardURL, tenant, appURL string) (string, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close() // nginx binds it next; a collision would show in the error log.

	certPEM, keyPEM, err := selfSigned(listen)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	u, err := url.Parse(stewardURL)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{listen}}", listen, "{{app}}", appURL,
		"{{steward}}", "https://"+u.Host, "{{tenant}}", url.PathEscape(tenant)).Replace(nginxConf)
	for name, data := range map[string][]byte{"proxy.crt": certPEM, "proxy.key": keyPEM, "nginx.conf": []byte(conf)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	var output bytes.Buffer
	// -e: the startup log goes to the temporary directory, not /var/log.
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	errorLog := func() string { raw, _ := os.ReadFile(filepath.Join(dir, "error.log")); return string(raw) }
	// Readiness, not a timing assertion: the deadline only bounds a hang.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("nginx exited at startup: %s\n%s", output.String(), errorLog())
		default:
		}
		if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
			c.Close()
			return "https://" + listen, roots
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s: %s", listen, errorLog())
		}
	}
}
