package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"
)

var trusted = Trusted{netip.MustParsePrefix("10.0.0.0/8")}

func TestFromProxy(t *testing.T) {
	for addr, want := range map[string]bool{"10.1.2.3:443": true, "192.168.1.1:443": false, "[::ffff:10.0.0.1]:80": true, "garbage": false} {
		if got := trusted.FromProxy(&http.Request{RemoteAddr: addr}); got != want {
			t.Errorf("%s: %v, want %v", addr, got, want)
		}
	}
}

// TestForwardedCertificate: the header counts only from a trusted proxy,
// only once, and only as URL-escaped PEM of one certificate.
func TestForwardedCertificate(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "device"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	escaped := url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	request := func(peer string, values ...string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		for _, v := range values {
			r.Header.Add("X-Client-Cert", v)
		}
		return r
	}
	cert, err := trusted.ForwardedCertificate(request("10.0.0.5:443", escaped), "X-Client-Cert")
	if err != nil || cert == nil || cert.Subject.CommonName != "device" {
		t.Fatalf("from a trusted proxy: %v, %v", cert, err)
	}
	for _, c := range []struct {
		what   string
		r      *http.Request
		header string
		want   error
	}{
		{"forwarding off", request("10.0.0.5:443", escaped), "", nil},
		{"no header", request("10.0.0.5:443"), "X-Client-Cert", nil},
		{"an untrusted peer", request("192.0.2.1:443", escaped), "X-Client-Cert", ErrUntrustedForward},
		{"the header twice", request("10.0.0.5:443", escaped, escaped), "X-Client-Cert", ErrRepeatedForward},
		{"not PEM", request("10.0.0.5:443", "hello"), "X-Client-Cert", ErrBadForward},
		{"bad escaping", request("10.0.0.5:443", "%zz"), "X-Client-Cert", ErrBadForward},
	} {
		cert, err := trusted.ForwardedCertificate(c.r, c.header)
		if cert != nil || !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: %v, %v; want no certificate and %v", c.what, cert, err, c.want)
		}
	}
}
