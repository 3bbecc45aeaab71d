package mdmproto

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// testPKI is a small real PKI: a root, an intermediate and leaves issued by it.
type testPKI struct {
	root, intermediate       *x509.Certificate
	rootKey, intermediateKey crypto.Signer
	roots                    *x509.CertPool
}

// testNow is the wall clock: CMS signatures carry the signing time from it,
// and verification wants that time within the signer's validity.
var testNow = time.Now().UTC().Truncate(time.Second)

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{}
	p.rootKey = newECKey(t)
	p.root = issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "Steward Test Root"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}, nil, p.rootKey, p.rootKey)
	p.intermediateKey = newECKey(t)
	p.intermediate = issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "Steward Test Device CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}, p.root, p.rootKey, p.intermediateKey)
	p.roots = x509.NewCertPool()
	p.roots.AddCert(p.root)
	return p
}

// leaf issues a device identity from the intermediate with the given
// extended key usages, valid for a day around testNow.
func (p *testPKI) leaf(t testing.TB, key crypto.Signer, eku ...x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	return issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: fixtureUDID},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: eku,
	}, p.intermediate, p.intermediateKey, key)
}

func newECKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newRSAKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var serial int64

func issue(t testing.TB, tmpl, parent *x509.Certificate, parentKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore = testNow.Add(-12 * time.Hour)
	tmpl.NotAfter = testNow.Add(12 * time.Hour)
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
