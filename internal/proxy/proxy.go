// Package proxy decides what to believe of a request that may have come
// through a reverse proxy: the client's address (X-Forwarded-For) and a
// forwarded TLS client certificate count only when the connection's peer
// is one of the trusted proxies.
package proxy

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Trusted are the addresses of the reverse proxies whose headers are
// believed.
type Trusted []netip.Prefix

// Peer is the connection's remote address.
func Peer(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// Contains says whether a is a trusted proxy.
func (t Trusted) Contains(a netip.Addr) bool {
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// FromProxy says whether the request's peer is a trusted proxy.
func (t Trusted) FromProxy(r *http.Request) bool {
	a, ok := Peer(r)
	return ok && t.Contains(a)
}

// ClientIP is the caller's address: the connection's peer, or the nearest
// untrusted hop of X-Forwarded-For when the peer is a trusted proxy. A
// trusted peer with a missing or unreadable header yields "", which no
// allowlist admits: failing open here would let anyone in through the proxy.
func (t Trusted) ClientIP(r *http.Request) string {
	addr, ok := Peer(r)
	if !ok {
		return ""
	}
	if !t.Contains(addr) {
		return addr.String()
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		for _, part := range strings.Split(h, ",") {
			if part = strings.TrimSpace(part); part != "" {
				hops = append(hops, part)
			}
		}
	}
	client := ""
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return ""
		}
		client = a.String()
		if !t.Contains(a) {
			break
		}
	}
	return client // every hop trusted: the first is the client
}

// parseHop reads one X-Forwarded-For entry: an address, optionally with a
// port or in brackets, as proxies write them.
func parseHop(h string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// Errors of ForwardedCertificate.
var (
	ErrUntrustedForward = errors.New("a forwarded client certificate is only accepted from a trusted proxy")
	// ErrRepeatedForward: a proxy that adds the header instead of
	// replacing it lets the client's own copy come first.
	ErrRepeatedForward = errors.New("the forwarded client certificate header appears more than once")
	ErrBadForward      = errors.New("the forwarded client certificate is not URL-escaped PEM of one certificate")
)

// ForwardedCertificate is the client certificate a trusted proxy passed in
// header (URL-escaped PEM, as nginx's $ssl_client_escaped_cert); nil when
// header is empty (forwarding off) or the request carries none.
func (t Trusted) ForwardedCertificate(r *http.Request, header string) (*x509.Certificate, error) {
	if header == "" {
		return nil, nil
	}
	values := r.Header.Values(header)
	switch {
	case len(values) == 0 || (len(values) == 1 && values[0] == ""):
		return nil, nil
	case !t.FromProxy(r):
		return nil, ErrUntrustedForward
	case len(values) > 1:
		return nil, ErrRepeatedForward
	}
	raw, err := url.QueryUnescape(values[0])
	if err != nil {
		return nil, ErrBadForward
	}
	block, _ := pem.Decode([]byte(raw))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, ErrBadForward
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, ErrBadForward
	}
	return cert, nil
}
