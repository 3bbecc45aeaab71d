package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/steward-mdm/steward/internal/api"
)

// testPushCert makes a self-signed certificate shaped like an MDM push
// certificate, as PEM, and its parts.
func testPushCert(t *testing.T) (pemData []byte, cert *x509.Certificate, key *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	uid := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1),
		Subject:   pkix.Name{CommonName: "APSP:test", ExtraNames: []pkix.AttributeTypeAndValue{{Type: uid, Value: "com.apple.mgmt.External.client-test"}}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemData = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
	return pemData, cert, key
}

func TestDetectPushCertificateFormat(t *testing.T) {
	pemData, cert, key := testPushCert(t)
	p12, err := pkcs12.Modern.Encode(key, cert, nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		want PushCertificateFormat
		err  error
	}{
		{"PEM", pemData, FormatPEM, nil},
		{"PEM after a text preamble", append([]byte("Bag Attributes\n    friendlyName: APSP\n"), pemData...), FormatPEM, nil},
		{"PKCS#12", p12, FormatPKCS12, nil},
		{"DER certificate alone", cert.Raw, "", ErrDERCertificateOnly},
		{"empty", []byte(" \n"), "", ErrEmptyPushCertificate},
		{"text", []byte("not a certificate"), "", ErrNotPushCertificate},
	} {
		got, err := DetectPushCertificateFormat(c.data)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("%s: got %q, %v; want %q, %v", c.name, got, err, c.want, c.err)
		}
	}
}

// pushCertServer answers as the API does, recording what it was sent.
func pushCertServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *Client {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(handle))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, "sec_test", TLSOptions{Fingerprint: fmt.Sprintf("SHA256:%x", sha256.Sum256(srv.Certificate().Raw))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSetPushCertificate(t *testing.T) {
	file := []byte{0x30, 0x82, 0x01, 0x02, 0xff}
	notAfter := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	var got api.PushCertificateRequest
	c := pushCertServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "PUT" || r.URL.EscapedPath() != "/api/v1/tenants/ten%2F1/apple/push-certificate" || r.Header.Get("Authorization") != "Bearer sec_test" {
			t.Errorf("request %s %s (%s)", r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"))
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
		_ = json.NewEncoder(w).Encode(api.PushCertificateView{Topic: "com.apple.mgmt.External.x", NotAfter: notAfter, DaysLeft: 400, Health: "ok"})
	})
	v, err := c.SetPushCertificate(context.Background(), "ten/1", file, " secret ", true)
	if err != nil {
		t.Fatal(err)
	}
	if got.Certificate != base64.StdEncoding.EncodeToString(file) || got.Password != " secret " || !got.ReplaceTopic {
		t.Errorf("sent %+v", got)
	}
	if v.Topic != "com.apple.mgmt.External.x" || !v.NotAfter.Equal(notAfter) || v.DaysLeft != 400 || v.Health != "ok" {
		t.Errorf("answer read as %+v", v)
	}
}

// TestPushCertificateErrors: the API's refusals come back in its words,
// with their status, for the CLI to show and to act on.
func TestPushCertificateErrors(t *testing.T) {
	const msg = "this certificate is for topic com.apple.mgmt.B, but the 3 enrolled Apple devices on com.apple.mgmt.A would stop receiving pushes"
	c := pushCertServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_, _ = fmt.Fprintf(w, `{"error":{"code":"conflict","message":%q}}`, msg)
	})
	for name, call := range map[string]func() error{
		"set": func() error {
			_, err := c.SetPushCertificate(context.Background(), "t1", []byte("x"), "", false)
			return err
		},
		"get": func() error { _, err := c.PushCertificate(context.Background(), "t1"); return err },
	} {
		var ce *Error
		if err := call(); !errors.As(err, &ce) || ce.Status != http.StatusConflict || ce.Code != "conflict" || ce.Message != msg {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPushCertificateStatus(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := pushCertServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "GET" || r.URL.Path != "/api/v1/tenants/t1/apple/push-certificate" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
		_, _ = fmt.Fprintf(w, `{"topic":"com.apple.mgmt.A","not_after":"2026-02-01T00:00:00Z","days_left":12,"expiry_warning":true,`+
			`"expired":false,"health":"refused","refused":true,"last_error":{"status":403,"reason":"BadCertificate","at":"2026-01-03T00:00:00Z"},`+
			`"failing_since":%q}`, since.Format(time.RFC3339))
	})
	v, err := c.PushCertificate(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if v.Topic != "com.apple.mgmt.A" || v.DaysLeft != 12 || !v.Warning || v.Health != "refused" || !v.Refused ||
		v.LastError == nil || v.LastError.Reason != "BadCertificate" || v.LastError.Status != 403 ||
		v.FailingSince == nil || !v.FailingSince.Equal(since) {
		t.Errorf("read as %+v", v)
	}
}
