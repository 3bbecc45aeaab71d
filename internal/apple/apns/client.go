package apns

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// APNs provider API endpoints. Devices enrolled with a development MDM
// profile only listen to the sandbox.
const (
	ProductionEndpoint  = "https://api.push.apple.com:443"
	DevelopmentEndpoint = "https://api.sandbox.push.apple.com:443"
)

// Defaults for NewClient; each has an option.
const (
	DefaultMaxStreams     = 32
	DefaultMaxAttempts    = 4
	DefaultRequestTimeout = 30 * time.Second
	DefaultExpiry         = 24 * time.Hour
	maxResponseBody       = 4 << 10
)

// A connection silent for connectionPingAfter is pinged, and closed if no
// answer comes within connectionPingTimeout: APNs connections live for
// hours, and one dropped on the way (a NAT or firewall forgetting it) would
// otherwise only show as every push on it timing out.
const (
	connectionPingAfter   = 15 * time.Second
	connectionPingTimeout = 5 * time.Second
)

// stopAfterFailuresInRow is how many pushes in a row may fail without a
// usable answer (network, timeout, 5xx) before a batch stops sending: by then
// APNs or the way to it is down, and each further push would only add its
// own retries to the load. The rest go back to the caller's queue.
const stopAfterFailuresInRow = 8

// certificateAlerts are the TLS alerts with which a server refuses the
// client's certificate: APNs sends one for a push certificate that is
// revoked, expired or not Apple's. (handshake_failure is left out: it also
// means no cipher suite in common.)
var certificateAlerts = []tls.AlertError{
	42, // bad_certificate
	43, // unsupported_certificate
	44, // certificate_revoked
	45, // certificate_expired
	46, // certificate_unknown
	48, // unknown_ca
	49, // access_denied
}

// MaxTokenLen is the longest device token, in bytes, a push is sent to (and
// a TokenUpdate may register): tokens are 32 today, but Apple documents them
// as variable length.
const MaxTokenLen = 256

// Notification is one MDM wake-up. Token and PushMagic come from the device's
// TokenUpdate check-in.
type Notification struct {
	Token      []byte    // raw device token; sent hex-encoded in the request path
	PushMagic  string    // the device ignores pushes without its current PushMagic
	Expiration time.Time // APNs drops the push after this; zero means now + the client's default expiry
}

// Client sends MDM pushes with one push certificate. It is safe for
// concurrent use; reuse it so that HTTP/2 connections are reused.
type Client struct {
	cert        *PushCertificate
	endpoint    string
	http        *http.Client
	maxStreams  int
	maxAttempts int
	timeout     time.Duration
	expiry      time.Duration
	backoff     Backoff
	now         func() time.Time
	log         *slog.Logger
	rootCAs     *x509.CertPool
}

// Option configures a Client.
type Option func(*Client)

// WithEndpoint sets the provider API base URL (scheme, host and port).
func WithEndpoint(base string) Option {
	return func(c *Client) { c.endpoint = strings.TrimSuffix(base, "/") }
}

// WithMaxStreams bounds how many pushes are in flight at once.
func WithMaxStreams(n int) Option { return func(c *Client) { c.maxStreams = n } }

// WithMaxAttempts bounds the requests sent per notification (1 = no retry).
func WithMaxAttempts(n int) Option { return func(c *Client) { c.maxAttempts = n } }

// WithBackoff sets the wait between attempts.
func WithBackoff(b Backoff) Option { return func(c *Client) { c.backoff = b } }

// WithRequestTimeout bounds each attempt.
func WithRequestTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithDefaultExpiry sets how long APNs keeps a push whose Expiration is zero.
func WithDefaultExpiry(d time.Duration) Option { return func(c *Client) { c.expiry = d } }

// WithRootCAs replaces the system roots used to verify the APNs server.
func WithRootCAs(pool *x509.CertPool) Option { return func(c *Client) { c.rootCAs = pool } }

// WithClock sets the time source (certificate expiry checks, default expiry).
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// WithLogger sets the logger; it only ever receives outcomes, statuses,
// reasons and apns-ids.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// NewClient builds a client that authenticates to APNs with cert.
func NewClient(cert *PushCertificate, opts ...Option) (*Client, error) {
	if cert == nil || cert.tls.PrivateKey == nil {
		return nil, errors.New("apns: NewClient needs a certificate from ParsePushCertificate")
	}
	c := &Client{
		cert:        cert,
		endpoint:    ProductionEndpoint,
		maxStreams:  DefaultMaxStreams,
		maxAttempts: DefaultMaxAttempts,
		timeout:     DefaultRequestTimeout,
		expiry:      DefaultExpiry,
		backoff:     ExponentialBackoff(500*time.Millisecond, 30*time.Second),
		now:         time.Now,
		log:         slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		opt(c)
	}
	switch {
	case c.maxStreams < 1:
		return nil, fmt.Errorf("apns: max streams must be at least 1, got %d", c.maxStreams)
	case c.maxAttempts < 1:
		return nil, fmt.Errorf("apns: max attempts must be at least 1, got %d", c.maxAttempts)
	case c.timeout <= 0 || c.expiry <= 0:
		return nil, errors.New("apns: request timeout and default expiry must be positive")
	case c.backoff == nil || c.now == nil || c.log == nil:
		return nil, errors.New("apns: backoff, clock and logger must not be nil")
	case !strings.HasPrefix(c.endpoint, "https://"):
		return nil, fmt.Errorf("apns: endpoint must be an https URL, got %q", c.endpoint)
	}

	leaf := cert.tls
	protocols := new(http.Protocols)
	protocols.SetHTTP2(true) // the provider API speaks HTTP/2 only
	c.http = &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    c.rootCAs,
			// Always offer the push certificate, whatever CAs the server lists.
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &leaf, nil },
		},
		Protocols:         protocols,
		HTTP2:             &http.HTTP2Config{SendPingTimeout: connectionPingAfter, PingTimeout: connectionPingTimeout},
		ForceAttemptHTTP2: true,
		// One connection carries the streams (HTTP/2 multiplexes); without a
		// limit, a batch starting cold dials one per stream before the first
		// connection is up. A server allowing fewer streams than the client
		// sends at once gets more connections, at most one per stream (Go's
		// HTTP/2 dials past this limit then): waiting for a stream instead
		// (StrictMaxConcurrentRequests) stalls this transport until timeout.
		MaxConnsPerHost:     1,
		Proxy:               http.ProxyFromEnvironment, // servers often reach Apple through an egress proxy
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     5 * time.Minute,
	}}
	return c, nil
}

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Push sends every notification, at most the configured number at once, and
// returns one Result per notification in the same order. Passing failures are
// retried with back-off within the client's attempts and ctx, but for 429,
// which goes back to the caller's queue at once. Once APNs refuses the
// certificate (Fatal), notifications not yet sent are skipped and reported
// Fatal with Reason ReasonSkipped; once stopAfterFailuresInRow pushes in a
// row failed without a usable answer, they are reported Retry with Reason
// ReasonSkippedAfterFailures; once ctx ends, they are reported Retry with
// Reason ReasonNotSent.
func (c *Client) Push(ctx context.Context, notes []Notification) []Result {
	results := make([]Result, len(notes))
	if len(notes) == 0 {
		return results
	}
	if c.cert.Expired(c.now()) {
		for i := range results {
			results[i] = Result{Outcome: Fatal, Reason: ReasonCertificateExpired}
		}
		c.log.Warn("apns: push certificate expired; nothing sent", "topic", c.cert.Topic, "count", len(notes))
		return results
	}

	var fatal, failing atomic.Bool
	var failuresInRow atomic.Int32 // in the order results come in, whatever the streams
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(c.maxStreams, len(notes)) {
		wg.Go(func() {
			for i := range next {
				if fatal.Load() {
					results[i] = Result{Outcome: Fatal, Reason: ReasonSkipped}
					continue
				}
				if failing.Load() {
					results[i] = Result{Outcome: Retry, Reason: ReasonSkippedAfterFailures}
					continue
				}
				if err := ctx.Err(); err != nil {
					results[i] = Result{Outcome: Retry, Reason: ReasonNotSent, Err: err}
					continue
				}
				r := c.send(ctx, notes[i])
				results[i] = r
				switch {
				case r.Outcome == Fatal:
					fatal.Store(true)
				case r.apnsFailing():
					if failuresInRow.Add(1) >= stopAfterFailuresInRow {
						failing.Store(true)
					}
				case r.Status != 0: // APNs answered: it is up
					failuresInRow.Store(0)
				}
			}
		})
	}
	for i := range notes {
		next <- i
	}
	close(next)
	wg.Wait()
	c.logSummary(results)
	return results
}

// send delivers one notification, retrying passing failures.
func (c *Client) send(ctx context.Context, n Notification) Result {
	if r, ok := c.refuseLocally(n); !ok {
		return r
	}
	body, err := json.Marshal(struct {
		MDM string `json:"mdm"`
	}{n.PushMagic})
	if err != nil { // cannot happen for a string; kept so a change cannot panic
		return Result{Outcome: Rejected, Err: fmt.Errorf("apns: encode payload: %w", err)}
	}
	target := c.endpoint + "/3/device/" + hex.EncodeToString(n.Token)
	expiration := c.expirationHeader(n.Expiration)

	var r Result
	for attempt := 1; ; attempt++ {
		r = c.attempt(ctx, target, expiration, body)
		r.Attempts = attempt
		// A 429 is APNs asking for fewer pushes to this device: sending
		// again within seconds would make it worse, so the caller's queue,
		// spacing its retries, has it.
		if r.Outcome != Retry || r.Status == http.StatusTooManyRequests || attempt >= c.maxAttempts {
			return r
		}
		c.log.Debug("apns: retrying push", "status", r.Status, "reason", r.Reason, "attempt", attempt)
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			r.Err = err
			return r
		}
	}
}

func (c *Client) refuseLocally(n Notification) (Result, bool) {
	switch {
	case len(n.Token) == 0:
		return Result{Outcome: BadToken, Reason: ReasonEmptyToken}, false
	case len(n.Token) > MaxTokenLen:
		return Result{Outcome: BadToken, Reason: ReasonTokenTooLong}, false
	case n.PushMagic == "":
		return Result{Outcome: Rejected, Reason: ReasonEmptyPushMagic}, false
	}
	return Result{}, true
}

// expirationHeader is seconds since the epoch; "0" (try once, do not store)
// for an expiration already past.
func (c *Client) expirationHeader(exp time.Time) string {
	now := c.now()
	if exp.IsZero() {
		exp = now.Add(c.expiry)
	}
	if !exp.After(now) {
		return "0"
	}
	return strconv.FormatInt(exp.Unix(), 10)
}

func (c *Client) attempt(ctx context.Context, target, expiration string, body []byte) Result {
	if err := ctx.Err(); err != nil {
		return Result{Outcome: Retry, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return Result{Outcome: Rejected, Err: errors.New("apns: cannot build request for the configured endpoint")}
	}
	req.Header.Set("apns-topic", c.cert.Topic)
	req.Header.Set("apns-push-type", "mdm")
	req.Header.Set("apns-priority", "10")
	req.Header.Set("apns-expiration", expiration)
	req.Header.Set("content-type", "application/json")

	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error quotes the URL, which holds the token: keep only the cause.
		if refusedInHandshake(err) {
			return Result{Outcome: Fatal, Reason: ReasonTLSCertificateRefused, Err: transportError(err)}
		}
		return Result{Outcome: Retry, Err: transportError(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil && resp.StatusCode != http.StatusOK {
		return Result{Outcome: Retry, Status: resp.StatusCode, Err: transportError(err)}
	}
	return classify(resp.StatusCode, data, resp.Header.Get("apns-id"))
}

// refusedInHandshake reports whether err is the server refusing the push
// certificate with a TLS alert. crypto/tls reports an alert it received as a
// *net.OpError "remote error" around an unexported type that prints as
// tls.AlertError does. tls.AlertError itself is not matched: it stands for an
// alert this side sent (QUIC). Neither is an alert from an HTTPS proxy, which
// net/http wraps in a "proxyconnect" *net.OpError, found first. In TLS 1.3
// the alert comes after the handshake, and a request may first fail writing
// to the connection the server closed: it is retried as a network error, and
// the next attempt reads the alert.
func refusedInHandshake(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return false
	}
	received := op.Err.Error()
	return slices.ContainsFunc(certificateAlerts, func(a tls.AlertError) bool { return received == a.Error() })
}

// transportError drops the request URL (and with it the device token) that
// *url.Error quotes, keeping the cause.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if err == nil || strings.Contains(err.Error(), "/3/device/") {
		return errors.New("apns: request failed")
	}
	return fmt.Errorf("apns: request failed: %w", err)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// logSummary logs the batch's counts at Debug; at Warn, with the cause, when
// APNs refused the certificate or pushes failed after every attempt, so that
// an operator learns why without turning debug on. A Result holds no token or
// key, so its status, reason and error are safe to log.
func (c *Client) logSummary(results []Result) {
	counts := make(map[Outcome]int)
	notSent := 0
	for _, r := range results {
		counts[r.Outcome]++
		if r.Reason == ReasonSkipped || r.Reason == ReasonSkippedAfterFailures || r.Reason == ReasonNotSent {
			notSent++
		}
	}
	attrs := []any{"topic", c.cert.Topic,
		"delivered", counts[Delivered], "unregistered", counts[Unregistered], "bad_token", counts[BadToken],
		"retry", counts[Retry], "fatal", counts[Fatal], "rejected", counts[Rejected], "not_sent", notSent}
	level := slog.LevelDebug
	if cause, ok := c.failureCause(results); ok {
		level = slog.LevelWarn
		attrs = append(attrs, "status", cause.Status, "reason", cause.Reason, "attempts", cause.Attempts)
		if cause.Err != nil {
			attrs = append(attrs, "error", cause.Err.Error())
		}
	}
	c.log.Log(context.Background(), level, "apns: push batch done", attrs...)
}

// failureCause is the batch's first certificate refusal, or else its first
// push that failed after every attempt, 429s aside (APNs pacing one device).
func (c *Client) failureCause(results []Result) (Result, bool) {
	for _, r := range results {
		if r.Outcome == Fatal && r.Reason != ReasonSkipped {
			return r, true
		}
	}
	for _, r := range results {
		if r.Outcome == Retry && r.Attempts >= c.maxAttempts && r.Status != http.StatusTooManyRequests {
			return r, true
		}
	}
	return Result{}, false
}
