// Package client is the CLI's side of the REST API: it sends requests with
// a token or a CLI session, pins the server's certificate when asked, and
// turns error bodies into readable errors.
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Client talks to one Steward server.
type Client struct {
	Server string // https://host:port
	Secret string // API token or CLI session secret
	http   *http.Client
}

// TLSOptions say how to trust the server: a pinned certificate fingerprint
// (for the self-signed certificate), an extra CA file, or the system roots.
type TLSOptions struct {
	Fingerprint string // "SHA256:<hex>"
	CAFile      string
}

// New builds a client.
func New(server, secret string, o TLSOptions) (*Client, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server must be an https:// URL, such as https://127.0.0.1:8443")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case o.Fingerprint != "":
		want, err := parseFingerprint(o.Fingerprint)
		if err != nil {
			return nil, err
		}
		// The pinned certificate replaces chain validation: it is exactly
		// the certificate the operator saw printed at start-up.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return fmt.Errorf("server certificate fingerprint SHA256:%x does not match the pinned one", got)
			}
			return nil
		}
	case o.CAFile != "":
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", o.CAFile)
		}
		tc.RootCAs = pool
	}
	return &Client{Server: strings.TrimRight(server, "/"), Secret: secret, http: &http.Client{
		Timeout:   5 * time.Minute,
		Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, Proxy: http.ProxyFromEnvironment},
	}}, nil
}

func parseFingerprint(s string) ([]byte, error) {
	h := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s, "SHA256:"), "sha256:"))
	h = strings.ReplaceAll(h, ":", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("fingerprint must look like SHA256:<64 hex digits>, as the server prints it")
	}
	return b, nil
}

// Error is an API error response.
type Error struct {
	Status  int
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

func (e *Error) Error() string {
	if len(e.Details) > 0 {
		b, _ := json.Marshal(e.Details)
		return fmt.Sprintf("%s (%s %s)", e.Message, e.Code, b)
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// Do sends a JSON request and decodes a JSON response into out (if non-nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.Raw(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the server's answer: %w", err)
	}
	return nil
}

// Raw sends a request and returns a successful response for the caller to
// read (streams). Error statuses come back as *Error.
func (c *Client) Raw(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "steward-cli")
	if c.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+c.Secret)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	var eb struct {
		Error Error `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" {
		return nil, &Error{Status: resp.StatusCode, Code: "http_" + fmt.Sprint(resp.StatusCode), Message: strings.TrimSpace(string(raw))}
	}
	eb.Error.Status = resp.StatusCode
	return nil, &eb.Error
}

// DeviceHTTP returns an HTTP client that trusts the server as this client
// does, without credentials, keeping up to conns connections open: what a
// device simulator needs.
func (c *Client) DeviceHTTP(conns int) *http.Client {
	t := c.http.Transport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = conns, conns
	// Devices speak HTTP/1.1 to the MDM server; offering h2 in ALPN (which
	// the cloned config may do) would make the server choose it.
	t.ForceAttemptHTTP2 = false
	t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	t.TLSClientConfig.NextProtos = []string{"http/1.1"}
	return &http.Client{Timeout: time.Minute, Transport: t}
}
