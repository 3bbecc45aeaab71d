package apns

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// untrustedPushEnv is a push certificate from a CA the fake APNs does not
// trust: the fake refuses it in the TLS handshake, as APNs does a revoked
// certificate or one that is not Apple's.
func untrustedPushEnv(t *testing.T, adjust ...func(*httptest.Server)) pushEnv {
	t.Helper()
	is := newTestCA(t).issue(t, pushCertSpec{key: newECKey(t)})
	cert := mustParse(t, join(certPEM(is.cert), keyPEM(t, is.key, "ec")), "")
	return pushEnv{cert: cert, fake: newFakeAPNs(t, newTestCA(t), testTopic, nil, adjust...)}
}

// notesFor makes count notifications, their tokens numbered in series.
func notesFor(series byte, count int) []Notification {
	notes := make([]Notification, count)
	for i := range notes {
		notes[i] = note(tok(fmt.Sprintf("%02x%02x", series, i)))
	}
	return notes
}

// refusingLate makes the fake verify client certificates itself, and refuse
// them after a pause, as APNs' alert comes a round trip after the handshake
// across the Internet. On loopback the alert may otherwise race the request:
// see the "at once" case below.
func refusingLate(c *tls.Config) {
	trusted := c.ClientCAs
	c.ClientAuth = tls.RequireAnyClientCert
	c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		time.Sleep(50 * time.Millisecond)
		leaf, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: trusted, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		return err
	}
}

// TestPushStopsBatchOnHandshakeRefusal: a certificate refused in the TLS
// handshake is a certificate refusal, as a 403 is: one attempt, the rest of
// the batch skipped, and the cause logged at Warn. In TLS 1.2 the alert ends
// the handshake; in TLS 1.3 it comes on the first read after it.
func TestPushStopsBatchOnHandshakeRefusal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		adjust func(*tls.Config)
		alert  string
	}{
		{"TLS 1.2", func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }, "unknown certificate authority"},
		{"TLS 1.3", func(c *tls.Config) { c.MinVersion = tls.VersionTLS13; refusingLate(c) }, "bad certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := untrustedPushEnv(t, tlsAdjust(tc.adjust))
			var logs bytes.Buffer
			c := env.client(t, WithMaxStreams(1), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			notes := notesFor(0xa1, 20)

			results := c.Push(context.Background(), notes)
			r := results[0]
			if r.Outcome != Fatal || r.Reason != ReasonTLSCertificateRefused || r.Status != 0 || r.Attempts != 1 || r.Err == nil {
				t.Fatalf("first result = %+v, want Fatal %s after one attempt", r, ReasonTLSCertificateRefused)
			}
			if !r.CertificateRefused() || r.ReasonLabel() != ReasonTLSCertificateRefused {
				t.Errorf("first result: refused %v, label %q; want a refusal labelled %s", r.CertificateRefused(), r.ReasonLabel(), ReasonTLSCertificateRefused)
			}
			for i, r := range results[1:] {
				if r.Outcome != Fatal || r.Reason != ReasonSkipped || r.Attempts != 0 {
					t.Errorf("result %d = %+v, want skipped", i+1, r)
				}
			}
			if n := env.fake.handshakes.Load(); n != 1 {
				t.Errorf("APNs saw %d handshakes after refusing the certificate in the first, want 1", n)
			}
			line := logs.String()
			if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "reason="+ReasonTLSCertificateRefused) ||
				!strings.Contains(line, tc.alert) {
				t.Errorf("the refusal's cause is not logged at Warn:\n%s", line)
			}
			for _, n := range notes {
				if tok := fmt.Sprintf("%x", n.Token); strings.Contains(line, tok) {
					t.Errorf("the log carries a token:\n%s", line)
				}
			}
		})
	}
	// Refused at once, the TLS 1.3 alert can lose the race to the request:
	// the request fails writing to the closed connection, or finds it closed
	// before its first use. That attempt is a passing failure; a later one
	// reads the alert, and nothing is sent after it.
	t.Run("TLS 1.3 at once", func(t *testing.T) {
		env := untrustedPushEnv(t, tlsAdjust(func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }))
		c := env.client(t, WithMaxStreams(1))
		results := c.Push(context.Background(), notesFor(0xa2, 20))
		refused := slices.IndexFunc(results, Result.CertificateRefused)
		if refused < 0 {
			t.Fatalf("no refusal in %+v", results)
		}
		for i, r := range results[refused+1:] {
			if r.Reason != ReasonSkipped {
				t.Errorf("result %d after the refusal = %+v, want skipped", refused+1+i, r)
			}
		}
		attempts := 0
		for _, r := range results {
			attempts += r.Attempts
		}
		if n := env.fake.handshakes.Load(); int(n) > attempts {
			t.Errorf("%d handshakes for %d attempts", n, attempts)
		}
	})
}

// alertingServer answers every TLS ClientHello with alert and hangs up.
func alertingServer(t *testing.T, alert tls.AlertError) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				// Read the whole ClientHello first: closing on unread data
				// would reset the connection and lose the alert.
				header := make([]byte, 5)
				if _, err := io.ReadFull(conn, header); err != nil {
					return
				}
				if _, err := io.CopyN(io.Discard, conn, int64(binary.BigEndian.Uint16(header[3:]))); err != nil {
					return
				}
				// An alert record: type 21, TLS 1.2, length 2, level fatal.
				_, _ = conn.Write([]byte{21, 3, 3, 0, 2, 2, byte(alert)})
				_, _ = io.Copy(io.Discard, conn) // until the client hangs up
			}()
		}
	}()
	return "https://" + ln.Addr().String()
}

// TestOnlyCertificateAlertsAreRefusals: the alerts that refuse the client's
// certificate are refusals; other alerts (no cipher suite in common, a
// server fault) are passing failures, retried.
func TestOnlyCertificateAlertsAreRefusals(t *testing.T) {
	env := newPushEnv(t, nil)
	for _, tc := range []struct {
		alert   tls.AlertError
		refused bool
	}{
		{42, true}, {43, true}, {44, true}, {45, true}, {46, true}, {48, true}, {49, true},
		{40, false}, // handshake_failure
		{70, false}, // protocol_version
		{80, false}, // internal_error
	} {
		t.Run(tc.alert.Error(), func(t *testing.T) {
			c := env.client(t, WithEndpoint(alertingServer(t, tc.alert)), WithMaxAttempts(2))
			r := c.Push(context.Background(), []Notification{note(tok("b1"))})[0]
			switch {
			case tc.refused && (r.Outcome != Fatal || r.Reason != ReasonTLSCertificateRefused || r.Attempts != 1 || !r.CertificateRefused()):
				t.Errorf("result = %+v, want a certificate refusal after one attempt", r)
			case !tc.refused && (r.Outcome != Retry || r.Attempts != 2 || r.CertificateRefused()):
				t.Errorf("result = %+v, want Retry after two attempts", r)
			}
			if r.Err == nil || !strings.Contains(r.Err.Error(), tc.alert.Error()) {
				t.Errorf("error %v does not name the alert", r.Err)
			}
		})
	}
}

// TestPushSharesOneConnection: pushes share one HTTP/2 connection, from the
// first batch on, rather than a batch starting cold dialling one per stream.
func TestPushSharesOneConnection(t *testing.T) {
	notes := notesFor(0xc1, 100)
	script := map[string][]reply{}
	for _, n := range notes {
		script[fmt.Sprintf("%x", n.Token)] = []reply{{status: http.StatusOK}}
	}
	env := newPushEnv(t, script)
	c := env.client(t) // DefaultMaxStreams at once
	for batch := range 3 {
		for i, r := range c.Push(context.Background(), notes) {
			if r.Outcome != Delivered {
				t.Fatalf("batch %d, result %d = %+v", batch, i, r)
			}
		}
	}
	if n := env.fake.handshakes.Load(); n != 1 {
		t.Errorf("3 batches of %d pushes took %d TLS handshakes, want 1", len(notes), n)
	}
}

// TestPushWithinTheServersStreamLimit: a server that allows fewer
// concurrent streams than the client sends at once gets every push, over a
// few connections: never more than one per stream. (How many exactly
// depends on when each connection's SETTINGS arrive; one connection for a
// server that allows enough streams is TestPushSharesOneConnection.)
func TestPushWithinTheServersStreamLimit(t *testing.T) {
	notes := notesFor(0xc3, 20)
	script := map[string][]reply{}
	for _, n := range notes {
		script[fmt.Sprintf("%x", n.Token)] = []reply{{status: http.StatusOK}}
	}
	const streams, serverLimit = 8, 2
	ca := newTestCA(t)
	leaf := ca.issue(t, pushCertSpec{key: newECKey(t)})
	env := pushEnv{cert: mustParse(t, join(certPEM(leaf.cert), keyPEM(t, leaf.key, "ec")), ""),
		fake: newFakeAPNs(t, ca, testTopic, script, func(s *httptest.Server) {
			s.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: serverLimit}
		})}
	env.fake.onRequest = func(string) { time.Sleep(20 * time.Millisecond) } // so streams overlap
	for i, r := range env.client(t, WithMaxStreams(streams)).Push(context.Background(), notes) {
		if r.Outcome != Delivered {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	if n := env.fake.handshakes.Load(); n > streams {
		t.Errorf("%d pushes, %d streams against a limit of %d, took %d TLS handshakes, want at most %d",
			len(notes), streams, serverLimit, n, streams)
	}
}

// TestPushStopsBatchWhenAPNsKeepsFailing: once stopAfterFailuresInRow
// pushes in a row failed without a usable answer, the rest of the batch is
// not sent but handed back for the queue's back-off. An answer in between
// starts the count again.
func TestPushStopsBatchWhenAPNsKeepsFailing(t *testing.T) {
	notes := notesFor(0xd1, 2*stopAfterFailuresInRow+4)
	failing := []reply{{status: http.StatusServiceUnavailable, reason: "ServiceUnavailable"}}
	script := map[string][]reply{}
	for i, n := range notes {
		script[fmt.Sprintf("%x", n.Token)] = failing
		if i == stopAfterFailuresInRow-1 { // one short of stopping
			script[fmt.Sprintf("%x", n.Token)] = []reply{{status: http.StatusOK}}
		}
	}
	env := newPushEnv(t, script)
	var logs bytes.Buffer
	c := env.client(t, WithMaxStreams(1), WithMaxAttempts(2), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

	results := c.Push(context.Background(), notes)
	stopped := 2 * stopAfterFailuresInRow
	for i, r := range results {
		switch {
		case i == stopAfterFailuresInRow-1:
			if r.Outcome != Delivered {
				t.Errorf("result %d = %+v, want delivered", i, r)
			}
		case i < stopped:
			if r.Outcome != Retry || r.Status != http.StatusServiceUnavailable || r.Attempts != 2 {
				t.Errorf("result %d = %+v, want Retry 503 after 2 attempts", i, r)
			}
		default:
			if r.Outcome != Retry || r.Reason != ReasonSkippedAfterFailures || r.Attempts != 0 || r.ReasonLabel() != ReasonSkippedAfterFailures {
				t.Errorf("result %d = %+v, want Retry %s, not sent", i, r, ReasonSkippedAfterFailures)
			}
		}
	}
	if got, want := env.fake.totalHits(), 2*(stopped-1)+1; got != want {
		t.Errorf("APNs saw %d requests, want %d", got, want)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "status=503 reason=ServiceUnavailable attempts=2") ||
		!strings.Contains(logs.String(), "not_sent=4") {
		t.Errorf("the failures' cause is not logged at Warn:\n%s", logs.String())
	}
}

// TestPushStopsBatchWhenAPNsIsUnreachable: network failures count as 5xx
// answers do.
func TestPushStopsBatchWhenAPNsIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every dial is refused
	var logs bytes.Buffer
	c := newPushEnv(t, nil).client(t, WithEndpoint("https://"+addr), WithMaxStreams(1), WithMaxAttempts(1),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

	for i, r := range c.Push(context.Background(), notesFor(0xe1, 3*stopAfterFailuresInRow)) {
		failed := r.Outcome == Retry && r.Attempts == 1 && r.Status == 0 && r.Err != nil
		skipped := r.Outcome == Retry && r.Reason == ReasonSkippedAfterFailures && r.Attempts == 0
		if (i < stopAfterFailuresInRow && !failed) || (i >= stopAfterFailuresInRow && !skipped) {
			t.Errorf("result %d = %+v, want the batch stopped after %d failures", i, r, stopAfterFailuresInRow)
		}
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("the failures' cause is not logged at Warn:\n%s", logs.String())
	}
}

// TestClientHonoursTheEnvironmentsProxy: servers often reach Apple only
// through an egress proxy, named in HTTPS_PROXY.
func TestClientHonoursTheEnvironmentsProxy(t *testing.T) {
	c := newPushEnv(t, nil).client(t)
	if c.http.Transport.(*http.Transport).Proxy == nil {
		t.Error("the APNs transport ignores HTTPS_PROXY")
	}
}
