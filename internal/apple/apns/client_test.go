package apns

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pushEnv is a parsed push certificate and a fake APNs that trusts its CA.
type pushEnv struct {
	cert *PushCertificate
	fake *fakeAPNs
}

func newPushEnv(t *testing.T, script map[string][]reply) pushEnv {
	t.Helper()
	ca := newTestCA(t)
	is := ca.issue(t, pushCertSpec{key: newECKey(t)})
	cert := mustParse(t, join(certPEM(is.cert), keyPEM(t, is.key, "ec")), "")
	return pushEnv{cert: cert, fake: newFakeAPNs(t, ca, testTopic, script)}
}

func (e pushEnv) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	base := []Option{
		WithEndpoint(e.fake.srv.URL),
		WithRootCAs(e.fake.rootCAs()),
		WithBackoff(func(int) time.Duration { return time.Millisecond }),
	}
	c, err := NewClient(e.cert, append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func note(tokenHex string) Notification {
	raw, err := hex.DecodeString(tokenHex)
	if err != nil {
		panic(err) // test table typo
	}
	return Notification{Token: raw, PushMagic: magicFor(tokenHex)}
}

// tok makes a realistic 32-byte token (hex) ending in id, so that a token in
// the logs cannot be mistaken for a fragment of something else.
func tok(id string) string { return strings.Repeat("d0", 31) + id }

func TestPushClassifiesProviderResponses(t *testing.T) {
	const deadAt = int64(1_790_000_000_123)
	script := map[string][]reply{
		tok("a1"): {{status: 200}},
		tok("a2"): {{status: 400, reason: "BadDeviceToken"}},
		tok("a3"): {{status: 400, reason: "DeviceTokenNotForTopic"}},
		tok("a4"): {{status: 410, reason: "Unregistered", timestamp: deadAt}},
		tok("a5"): {{status: 429, reason: "TooManyRequests"}, {status: 200}}, // the 200 would come on a retry, if one were sent
		tok("a6"): {{status: 500, reason: "InternalServerError"}},
		tok("a7"): {{status: 503, reason: "ServiceUnavailable"}, {status: 200}},
		tok("a8"): {{status: 413, reason: "PayloadTooLarge"}},
		tok("a9"): {{status: 400, reason: "TopicDisallowed"}},
		tok("b1"): {{status: 400, reason: "IdleTimeout"}, {status: 200}},
	}
	env := newPushEnv(t, script)
	var logs bytes.Buffer
	now := time.Now().Truncate(time.Second)
	c := env.client(t, WithMaxStreams(3), WithMaxAttempts(3), WithClock(func() time.Time { return now }),
		WithDefaultExpiry(2*time.Hour), WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))

	expiring := note(tok("a7"))
	expiring.Expiration = now.Add(90 * time.Minute)
	notes := []Notification{note(tok("a1")), note(tok("a2")), note(tok("a3")), note(tok("a4")), note(tok("a5")), note(tok("a6")), expiring, note(tok("a8")),
		{PushMagic: "magic-x"}, {Token: []byte{0xa0}}, note(tok("b1"))}
	// a9 is a Fatal outcome and would skip the rest; it has its own test.
	want := []struct {
		outcome  Outcome
		status   int
		reason   string
		attempts int
	}{
		{Delivered, 200, "", 1},
		{BadToken, 400, "BadDeviceToken", 1},
		{BadToken, 400, "DeviceTokenNotForTopic", 1},
		{Unregistered, 410, "Unregistered", 1},
		{Retry, 429, "TooManyRequests", 1}, // back to the caller's queue at once: a retry within seconds adds to the throttling
		{Retry, 500, "InternalServerError", 3},
		{Delivered, 200, "", 2},
		{Rejected, 413, "PayloadTooLarge", 1},
		{BadToken, 0, ReasonEmptyToken, 0},
		{Rejected, 0, ReasonEmptyPushMagic, 0},
		{Delivered, 200, "", 2},
	}

	results := c.Push(context.Background(), notes)
	if len(results) != len(notes) {
		t.Fatalf("got %d results for %d notifications", len(results), len(notes))
	}
	for i, w := range want {
		r := results[i]
		if r.Outcome != w.outcome || r.Status != w.status || r.Reason != w.reason || r.Attempts != w.attempts {
			t.Errorf("result %d = %v/%d/%q/%d attempts, want %v/%d/%q/%d", i,
				r.Outcome, r.Status, r.Reason, r.Attempts, w.outcome, w.status, w.reason, w.attempts)
		}
		if r.Status != 0 && r.ID == "" {
			t.Errorf("result %d lacks the apns-id", i)
		}
		if tok := hex.EncodeToString(notes[i].Token); r.Attempts > 0 && env.fake.hitsFor(tok) != r.Attempts {
			t.Errorf("result %d: %d attempts but the server saw %d", i, r.Attempts, env.fake.hitsFor(tok))
		}
	}
	if got := results[3].UnregisteredAt; !got.Equal(time.UnixMilli(deadAt)) {
		t.Errorf("UnregisteredAt = %v, want %v", got, time.UnixMilli(deadAt))
	}
	if got, want := env.fake.expirationFor(tok("a1")), strconv.FormatInt(now.Add(2*time.Hour).Unix(), 10); got != want {
		t.Errorf("default apns-expiration = %s, want %s", got, want)
	}
	if got, want := env.fake.expirationFor(tok("a7")), strconv.FormatInt(expiring.Expiration.Unix(), 10); got != want {
		t.Errorf("explicit apns-expiration = %s, want %s", got, want)
	}
	if !strings.Contains(logs.String(), "delivered=3") || !strings.Contains(logs.String(), "retry=2") {
		t.Errorf("batch summary missing from logs: %s", logs.String())
	}
	for tok := range script {
		if strings.Contains(logs.String(), tok) || strings.Contains(logs.String(), magicFor(tok)) {
			t.Errorf("logs carry a token or PushMagic: %s", logs.String())
		}
	}
}

func TestPushStopsBatchOnCertificateRefusal(t *testing.T) {
	for _, tc := range []struct {
		status int
		reason string
	}{{403, "BadCertificate"}, {400, "TopicDisallowed"}} {
		t.Run(tc.reason, func(t *testing.T) {
			env := newPushEnv(t, map[string][]reply{"b1": {{status: tc.status, reason: tc.reason}}, "b2": {{status: 200}}, "b3": {{status: 200}}})
			c := env.client(t, WithMaxStreams(1))
			results := c.Push(context.Background(), []Notification{note("b1"), note("b2"), note("b3")})
			if r := results[0]; r.Outcome != Fatal || r.Reason != tc.reason || r.Status != tc.status || r.Attempts != 1 {
				t.Errorf("first result = %+v, want Fatal %s after one attempt", r, tc.reason)
			}
			if r := results[0]; !r.CertificateRefused() || r.ReasonLabel() != tc.reason {
				t.Errorf("first result = %+v: refused %v, label %q; want a refusal labelled %s", r, r.CertificateRefused(), r.ReasonLabel(), tc.reason)
			}
			for i, r := range results[1:] {
				if r.Outcome != Fatal || r.Reason != ReasonSkipped || r.Attempts != 0 {
					t.Errorf("result %d = %+v, want skipped", i+1, r)
				}
				if r.CertificateRefused() {
					t.Errorf("result %d = %+v: a skipped push is not APNs' answer", i+1, r)
				}
			}
			if n := env.fake.totalHits(); n != 1 {
				t.Errorf("server saw %d requests after a certificate refusal, want 1", n)
			}
		})
	}
}

func TestPushBoundsConcurrentStreams(t *testing.T) {
	const streams, count = 4, 24
	script := map[string][]reply{}
	var notes []Notification
	for i := range count {
		tok := hex.EncodeToString([]byte{0xc0, byte(i)})
		script[tok] = []reply{{status: 200}}
		notes = append(notes, note(tok))
	}
	env := newPushEnv(t, script)
	var inflight, peak atomic.Int32
	arrived := make(chan struct{}, count)
	release := make(chan struct{}, count)
	stalled := make(chan struct{})
	var stallOnce sync.Once
	env.fake.onRequest = func(string) {
		n := inflight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		arrived <- struct{}{}
		select {
		case <-release:
		case <-stalled:
		case <-time.After(10 * time.Second): // deadlock guard only
			stallOnce.Do(func() {
				t.Errorf("push held forever: the client never had %d pushes in flight", streams)
				close(stalled)
			})
		}
		inflight.Add(-1) // before the response, so the client's next push comes after it
	}
	// Hold every push; let one finish only while the client has filled every
	// stream. A client that never fills them stalls; one that overfills them
	// shows a higher peak.
	go func() {
		held := 0
		for range count {
			select {
			case <-arrived:
			case <-time.After(10 * time.Second):
				return
			}
			if held++; held >= streams {
				release <- struct{}{}
				held--
			}
		}
		for ; held > 0; held-- {
			release <- struct{}{}
		}
	}()
	results := env.client(t, WithMaxStreams(streams)).Push(context.Background(), notes)
	for i, r := range results {
		if r.Outcome != Delivered {
			t.Errorf("result %d = %v", i, r.Outcome)
		}
	}
	if got := peak.Load(); got != streams {
		t.Errorf("peak in-flight pushes = %d, want exactly %d", got, streams)
	}
}

func TestPushHonoursContextDuringBackoff(t *testing.T) {
	env := newPushEnv(t, map[string][]reply{"d1": {{status: 503, reason: "ServiceUnavailable"}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env.fake.onRequest = func(string) { cancel() }
	var waits atomic.Int32
	c := env.client(t, WithMaxAttempts(5), WithBackoff(func(int) time.Duration { waits.Add(1); return time.Hour }))

	r := c.Push(ctx, []Notification{note("d1")})[0]
	if r.Outcome != Retry || r.Attempts != 1 || !errors.Is(r.Err, context.Canceled) {
		t.Errorf("result = %+v, want Retry after 1 attempt with context.Canceled", r)
	}
	if waits.Load() != 1 {
		t.Errorf("back-off consulted %d times, want 1", waits.Load())
	}
}

// TestPushReportsWhatCtxLeftUnsent: once ctx ends, the notifications not
// sent yet are not sent, and say so, with no attempt counted.
func TestPushReportsWhatCtxLeftUnsent(t *testing.T) {
	env := newPushEnv(t, map[string][]reply{"e1": {{status: 200}}, "e2": {{status: 200}}, "e3": {{status: 200}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env.fake.onRequest = func(token string) {
		if token == "e2" {
			cancel()
		}
	}
	results := env.client(t, WithMaxStreams(1)).Push(ctx, []Notification{note("e1"), note("e2"), note("e3")})
	if r := results[0]; r.Outcome != Delivered {
		t.Errorf("push before ctx ended = %+v, want delivered", r)
	}
	if r := results[1]; r.Attempts != 1 || r.Reason == ReasonNotSent { // delivered or not, by who wins the race
		t.Errorf("push in flight as ctx ended = %+v, want its attempt counted", r)
	}
	if r := results[2]; r.Outcome != Retry || r.Reason != ReasonNotSent || r.Attempts != 0 || !errors.Is(r.Err, context.Canceled) {
		t.Errorf("push after ctx ended = %+v, want Retry NotSent with no attempt", r)
	}
	if n := env.fake.hitsFor("e3"); n != 0 {
		t.Errorf("APNs saw %d pushes after ctx ended", n)
	}
}

// TestClientHealthChecksConnections: a connection to APNs dropped on the
// way is found by a ping, not by the pushes that time out on it.
func TestClientHealthChecksConnections(t *testing.T) {
	c := newPushEnv(t, nil).client(t)
	h2 := c.http.Transport.(*http.Transport).HTTP2
	if h2 == nil || h2.SendPingTimeout <= 0 || h2.PingTimeout <= 0 || h2.PingTimeout >= h2.SendPingTimeout {
		t.Fatalf("HTTP/2 health check = %+v, want a ping after some silence, answered within a shorter timeout", h2)
	}
}

func TestPushNetworkErrorIsRetryWithoutToken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every dial is refused
	env := newPushEnv(t, nil)
	var waited []int
	c := env.client(t, WithEndpoint("https://"+addr), WithMaxAttempts(3),
		WithBackoff(func(a int) time.Duration { waited = append(waited, a); return 0 }))

	r := c.Push(context.Background(), []Notification{note("e1")})[0]
	if r.Outcome != Retry || r.Attempts != 3 || r.Err == nil || r.Status != 0 {
		t.Fatalf("result = %+v, want Retry after 3 attempts with an error", r)
	}
	if strings.Contains(r.Err.Error(), "e1") || strings.Contains(r.Err.Error(), "/3/device/") {
		t.Errorf("error leaks the token: %v", r.Err)
	}
	if len(waited) != 2 || waited[0] != 1 || waited[1] != 2 {
		t.Errorf("back-off attempts = %v, want [1 2]", waited)
	}
}

func TestPushRefusesExpiredCertificateLocally(t *testing.T) {
	env := newPushEnv(t, map[string][]reply{"f1": {{status: 200}}})
	c := env.client(t, WithClock(func() time.Time { return env.cert.NotAfter.Add(time.Second) }))
	r := c.Push(context.Background(), []Notification{note("f1")})[0]
	if r.Outcome != Fatal || r.Reason != ReasonCertificateExpired || r.CertificateRefused() || env.fake.totalHits() != 0 {
		t.Errorf("result = %+v with %d requests, want Fatal CertificateExpired and none sent", r, env.fake.totalHits())
	}
}

// TestOnlyCertificateRefusalsAreRefusals: device-level and passing failures
// are not the certificate's, and an undocumented reason gets the catch-all
// metric label.
func TestOnlyCertificateRefusalsAreRefusals(t *testing.T) {
	script := map[string][]reply{
		tok("c1"): {{status: 400, reason: "BadDeviceToken"}},
		tok("c2"): {{status: 410, reason: "Unregistered"}},
		tok("c3"): {{status: 503, reason: "ServiceUnavailable"}},
		tok("c4"): {{status: 418, reason: "Teapot" + strings.Repeat("!", 40)}},
	}
	env := newPushEnv(t, script)
	c := env.client(t, WithMaxAttempts(1))
	results := c.Push(context.Background(), []Notification{note(tok("c1")), note(tok("c2")), note(tok("c3")), note(tok("c4"))})
	for i, want := range []string{"BadDeviceToken", "Unregistered", "ServiceUnavailable", ReasonLabelOther} {
		if r := results[i]; r.CertificateRefused() || r.ReasonLabel() != want {
			t.Errorf("result %d = %+v: refused %v, label %q; want no refusal, label %s", i, r, r.CertificateRefused(), r.ReasonLabel(), want)
		}
	}
	if r := (Result{Outcome: Retry}); r.ReasonLabel() != ReasonLabelNoResponse {
		t.Errorf("no response labelled %q", r.ReasonLabel())
	}
}

// The fake must refuse a client without the push certificate, or the tests
// above would prove nothing about client authentication.
func TestFakeAPNsRequiresClientCertificate(t *testing.T) {
	env := newPushEnv(t, map[string][]reply{"01": {{status: 200}}})
	plain := env.fake.srv.Client() // trusts the server, offers no certificate
	resp, err := plain.Post(env.fake.srv.URL+"/3/device/01", "application/json", strings.NewReader(`{"mdm":"magic-01"}`))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("fake APNs answered %d to a client without a certificate", resp.StatusCode)
	}
	if env.fake.totalHits() != 0 {
		t.Error("request without a client certificate reached the handler")
	}
}

func TestNewClientRejectsBadConfiguration(t *testing.T) {
	env := newPushEnv(t, nil)
	for name, opt := range map[string]Option{
		"zero streams":  WithMaxStreams(0),
		"zero attempts": WithMaxAttempts(0),
		"plain http":    WithEndpoint("http://127.0.0.1:1"),
		"nil backoff":   WithBackoff(nil),
	} {
		if _, err := NewClient(env.cert, opt); err == nil {
			t.Errorf("%s: NewClient accepted it", name)
		}
	}
	if _, err := NewClient(&PushCertificate{Topic: testTopic}); err == nil {
		t.Error("NewClient accepted a certificate without a key")
	}
}

func TestExponentialBackoffStaysInBounds(t *testing.T) {
	base, limit := 100*time.Millisecond, 2*time.Second
	b := ExponentialBackoff(base, limit)
	for attempt := 1; attempt <= 12; attempt++ {
		ceiling := min(base<<(attempt-1), limit)
		for range 50 {
			if d := b(attempt); d < ceiling/2 || d > ceiling {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, ceiling/2, ceiling)
			}
		}
	}
}
