package apns

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

const testTopic = "com.apple.mgmt.External.6f0c1b4e-2b1d-4b5e-9a43-0d6a6c1e9b27"

// testCA stands in for Apple's push CA: it signs push certificates in tests.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Test Push CA"},
		NotBefore:             time.Now().Add(-48 * time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// pushCertSpec describes a push certificate to issue; zero fields get defaults.
type pushCertSpec struct {
	topic     string // subject UID; "-" leaves the attribute out
	notBefore time.Time
	notAfter  time.Time
	key       crypto.Signer
}

type issued struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (ca *testCA) issue(t *testing.T, spec pushCertSpec) issued {
	t.Helper()
	if spec.topic == "" {
		spec.topic = testTopic
	}
	if spec.notBefore.IsZero() {
		spec.notBefore = time.Now().Add(-time.Hour)
	}
	if spec.notAfter.IsZero() {
		spec.notAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	if spec.key == nil {
		spec.key = newRSAKey(t)
	}
	subject := pkix.Name{CommonName: "APSP:6f0c1b4e-2b1d-4b5e-9a43-0d6a6c1e9b27", Country: []string{"US"}}
	if spec.topic != "-" {
		subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: oidUserID, Value: spec.topic}}
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x7e57c0de),
		Subject:      subject,
		NotBefore:    spec.notBefore,
		NotAfter:     spec.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, spec.key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return issued{cert: cert, key: spec.key}
}

func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// keyPEM encodes key in the named form: "pkcs1", "pkcs8" or "ec".
func keyPEM(t *testing.T, key crypto.Signer, form string) []byte {
	t.Helper()
	var block *pem.Block
	switch form {
	case "pkcs1":
		block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))}
	case "ec":
		der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	default:
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	return pem.EncodeToMemory(block)
}

func mustParse(t *testing.T, data []byte, password string) *PushCertificate {
	t.Helper()
	pc, err := ParsePushCertificate(data, password, time.Now())
	if err != nil {
		t.Fatalf("ParsePushCertificate: %v", err)
	}
	return pc
}
