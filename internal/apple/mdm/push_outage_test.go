package mdm_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-mdm/steward/internal/apple/apns"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPushCertificateRefusedInTheHandshake: APNs refusing the certificate
// with a TLS alert (revoked, not Apple's…) is a refusal as a 403 is: on
// record, on the gauge, logged once with the alert, and probed hourly rather
// than every push retried with fresh handshakes.
func TestPushCertificateRefusedInTheHandshake(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f, dev, _ := pushFixture(t, st)
		f.now = time.Now().UTC().Truncate(time.Microsecond)
		f.svc.SetClock(func() time.Time { return f.now })
		start := f.now

		// A server that trusts no client certificate, in TLS 1.2, where the
		// alert ends the handshake (the apns tests cover TLS 1.3's).
		var handshakes atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			t.Error("a request got past the refused handshake")
		}))
		srv.EnableHTTP2 = true
		srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: x509.NewCertPool(), MaxVersion: tls.VersionTLS12,
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { handshakes.Add(1); return nil, nil }}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
		srv.StartTLS()
		t.Cleanup(srv.Close)
		roots := x509.NewCertPool()
		roots.AddCert(srv.Certificate())
		var logs bytes.Buffer
		pusher := &mdm.Pusher{Service: f.svc, Endpoint: srv.URL, Options: []apns.Option{apns.WithRootCAs(roots)},
			Log: slog.New(slog.NewTextHandler(&logs, nil))}
		reg := prometheus.NewRegistry()
		reg.MustRegister(f.svc.MetricsCollector())
		run := func() int32 {
			t.Helper()
			before := handshakes.Load()
			if n, err := pusher.RunOnce(f.ctx); err != nil || n != 0 {
				t.Fatalf("run: %d delivered, %v", n, err)
			}
			return handshakes.Load() - before
		}

		if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.SecurityInfo{}, "", admin); err != nil {
			t.Fatal(err)
		}
		if n := run(); n != 1 {
			t.Fatalf("the refused push took %d handshakes, want 1", n)
		}
		s, err := f.svc.PushCertificateStatus(f.ctx, f.tenant)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.Refused; r == nil || r.Status != 0 || r.Reason != apns.ReasonTLSCertificateRefused || !r.Since.Equal(start) {
			t.Fatalf("the refusal on record: %+v, want %s at %v", r, apns.ReasonTLSCertificateRefused, start)
		}
		if s.Health() != apns.HealthRefused {
			t.Errorf("health of a certificate refused in the handshake: %q", s.Health())
		}
		if v := gauge(t, reg, "steward_apns_certificate_refused"); v != 1 {
			t.Errorf("refused gauge: %v", v)
		}
		if v := pushFailures(t, reg, f.tenant, apns.ReasonTLSCertificateRefused); v != 1 {
			t.Errorf("%s failures counted: %v", apns.ReasonTLSCertificateRefused, v)
		}

		// The 15-minute retries within the hour do not reach APNs; the
		// hour's probe does, and is refused again without a new log line.
		f.now = start.Add(15 * time.Minute)
		if n := run(); n != 0 {
			t.Fatalf("15 minutes after the refusal, APNs saw %d more handshakes", n)
		}
		f.now = start.Add(time.Hour)
		if n := run(); n != 1 {
			t.Fatalf("the hourly probe took %d handshakes", n)
		}
		var refusals []string
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "refuses the tenant's push certificate") {
				refusals = append(refusals, line)
			}
		}
		if len(refusals) != 1 {
			t.Fatalf("the refusal was logged %d times, want once:\n%s", len(refusals), &logs)
		}
		if line := refusals[0]; !strings.Contains(line, "reason="+apns.ReasonTLSCertificateRefused) ||
			!strings.Contains(line, "tls: unknown certificate authority") {
			t.Errorf("the refusal's log line does not say which alert refused the certificate: %s", line)
		}
	})
}

// TestPushBatchStopsWhileAPNsFails: APNs answers every push 503. The batch
// stops after 8 failures in a row rather than sending every push into the
// outage; the pushes it did not send are not counted as failures, and wait
// their back-off as the failed ones do instead of coming due at once. The
// back-offs differ from channel to channel, so that the channels do not
// come due together again.
func TestPushBatchStopsWhileAPNsFails(t *testing.T) {
	const channels = 10 // more than the 8 failures in a row that stop a batch
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		ts := f.serve()
		f.publish(privacy.Corporate)
		f.setPushCertificate()
		var ids []string
		for range channels {
			_, dev := f.enrolled(ts, privacy.Corporate, "")
			ids = append(ids, dev.ID)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		f.svc.SetClock(func() time.Time { return now })
		if _, err := f.svc.Enqueue(f.ctx, f.tenant, ids, mdmproto.SecurityInfo{}, "", admin); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		requests := 0
		pusher := startAPNs(t, f, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			requests++
			mu.Unlock()
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"reason":"ServiceUnavailable"}`))
		}))
		// One at a time, once each, for a count that does not hang on timing.
		pusher.Options = append(pusher.Options, apns.WithMaxStreams(1), apns.WithMaxAttempts(1))
		pusher.Log = slog.New(slog.DiscardHandler)
		reg := prometheus.NewRegistry()
		reg.MustRegister(f.svc.MetricsCollector())

		if n, err := pusher.RunOnce(f.ctx); err != nil || n != 0 {
			t.Fatalf("run: %d delivered, %v", n, err)
		}
		mu.Lock()
		if requests != 8 {
			t.Errorf("APNs saw %d pushes of %d, want the batch stopped after 8 failures", requests, channels)
		}
		mu.Unlock()
		if v := pushFailures(t, reg, f.tenant, "ServiceUnavailable"); v != 8 {
			t.Errorf("ServiceUnavailable failures counted: %v, want 8", v)
		}
		if v := pushFailures(t, reg, f.tenant, apns.ReasonSkippedAfterFailures); v != 0 {
			t.Errorf("pushes not sent counted as failures: %v", v)
		}
		// retryDelay(1) is 2s, give or take a fifth.
		earliest, latest := now.Add(1600*time.Millisecond), now.Add(2400*time.Millisecond)
		dues := map[time.Time]bool{}
		for _, id := range ids {
			ch, err := st.Read().AppleChannels().Get(f.ctx, f.tenant, id)
			if err != nil {
				t.Fatal(err)
			}
			if ch.PushAttempts != 1 || ch.PushDueAt.Before(earliest) || ch.PushDueAt.After(latest) {
				t.Errorf("channel after the outage: %d attempts, due %v; want 1 attempt, due %v to %v",
					ch.PushAttempts, ch.PushDueAt, earliest, latest)
			}
			dues[ch.PushDueAt] = true
		}
		if len(dues) <= channels/2 {
			t.Errorf("%d channels come due at only %d distinct times", channels, len(dues))
		}
	})
}
