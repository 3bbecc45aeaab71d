package apns

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// reply is one scripted APNs answer.
type reply struct {
	status    int
	reason    string
	timestamp int64 // ms since the epoch, for 410
}

// fakeAPNs speaks the provider API as Apple documents it: POST
// /3/device/<hex token> over HTTP/2 with a client certificate, MDM headers and
// a {"mdm": PushMagic} body. Each token follows its script; the last reply
// repeats. Any protocol violation fails the test.
type fakeAPNs struct {
	t      *testing.T
	srv    *httptest.Server
	topic  string
	script map[string][]reply

	mu          sync.Mutex
	hits        map[string]int
	expirations map[string]string

	// onRequest, if set, runs before the reply (for concurrency and ctx tests).
	onRequest func(token string)

	handshakes atomic.Int32 // TLS handshakes begun, refused ones too
}

func magicFor(tokenHex string) string { return "magic-" + tokenHex }

// newFakeAPNs starts a fake that trusts client certificates issued by ca;
// adjust, if given, changes its TLS configuration first.
func newFakeAPNs(t *testing.T, ca *testCA, topic string, script map[string][]reply, adjust ...func(*httptest.Server)) *fakeAPNs {
	t.Helper()
	f := &fakeAPNs{t: t, topic: topic, script: script, hits: map[string]int{}, expirations: map[string]string{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.EnableHTTP2 = true
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	f.srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			f.handshakes.Add(1)
			return nil, nil // the configuration above
		}}
	for _, a := range adjust {
		a(f.srv)
	}
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected in some tests
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// tlsAdjust changes the fake's TLS settings.
func tlsAdjust(adjust func(*tls.Config)) func(*httptest.Server) {
	return func(s *httptest.Server) { adjust(s.TLS) }
}

// rootCAs trusts the fake's server certificate.
func (f *fakeAPNs) rootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	return pool
}

func (f *fakeAPNs) hitsFor(token string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[token]
}

func (f *fakeAPNs) expirationFor(token string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.expirations[token]
}

func (f *fakeAPNs) totalHits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, h := range f.hits {
		n += h
	}
	return n
}

func (f *fakeAPNs) serve(w http.ResponseWriter, r *http.Request) {
	token, problem := f.check(r)
	if problem != "" {
		f.t.Errorf("fake APNs: %s", problem)
		writeReply(w, reply{status: http.StatusBadRequest, reason: "TestProtocolViolation"})
		return
	}
	f.mu.Lock()
	n := f.hits[token]
	f.hits[token]++
	f.expirations[token] = r.Header.Get("apns-expiration")
	f.mu.Unlock()

	if f.onRequest != nil {
		f.onRequest(token)
	}
	steps, ok := f.script[token]
	if !ok {
		f.t.Errorf("fake APNs: unscripted token %s", token)
		writeReply(w, reply{status: http.StatusBadRequest, reason: "BadDeviceToken"})
		return
	}
	writeReply(w, steps[min(n, len(steps)-1)])
}

// check returns the token and an empty string, or what the request got wrong.
func (f *fakeAPNs) check(r *http.Request) (string, string) {
	switch {
	case r.ProtoMajor != 2:
		return "", fmt.Sprintf("protocol %s, want HTTP/2", r.Proto)
	case r.Method != http.MethodPost:
		return "", "method " + r.Method + ", want POST"
	case r.TLS == nil || len(r.TLS.PeerCertificates) == 0:
		return "", "no client certificate"
	}
	certTopic, err := topicOf(r.TLS.PeerCertificates[0])
	if err != nil {
		return "", "client certificate: " + err.Error()
	}
	token, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok {
		return "", "path " + r.URL.Path + " lacks /3/device/"
	}
	if raw, err := hex.DecodeString(token); err != nil || len(raw) == 0 || token != strings.ToLower(token) {
		return "", "token in path is not lowercase hex"
	}
	if got := r.Header.Get("apns-topic"); got != certTopic || got != f.topic {
		return "", fmt.Sprintf("apns-topic %q, certificate topic %q", got, certTopic)
	}
	if got := r.Header.Get("apns-push-type"); got != "mdm" {
		return "", fmt.Sprintf("apns-push-type %q, want mdm", got)
	}
	if got := r.Header.Get("apns-priority"); got != "10" {
		return "", fmt.Sprintf("apns-priority %q, want 10", got)
	}
	if exp, err := strconv.ParseInt(r.Header.Get("apns-expiration"), 10, 64); err != nil || exp < 0 {
		return "", "apns-expiration is not epoch seconds"
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 5000))
	if err != nil {
		return "", "read body: " + err.Error()
	}
	var payload map[string]any
	if err := json.Unmarshal(body, &payload); err != nil {
		return "", "body is not JSON"
	}
	if len(payload) != 1 || payload["mdm"] != magicFor(token) {
		return "", fmt.Sprintf("payload %s, want only the device's PushMagic under \"mdm\"", body)
	}
	return token, ""
}

func writeReply(w http.ResponseWriter, rp reply) {
	w.Header().Set("apns-id", "5e1c2b7a-9a0b-4c1e-8f3d-2a6b7c8d9e0f")
	if rp.status == http.StatusOK {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(rp.status)
	body := map[string]any{"reason": rp.reason}
	if rp.timestamp != 0 {
		body["timestamp"] = rp.timestamp
	}
	_ = json.NewEncoder(w).Encode(body)
}
