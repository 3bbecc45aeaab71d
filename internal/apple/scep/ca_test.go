package scep

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/scep"
)

func TestLoadOrCreateCA(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	ca := e.cas[tenantA]
	cert := ca.Certificate()

	if got, want := cert.Subject.CommonName, "Steward Device CA Tenant tenant-a"; got != want {
		t.Errorf("CN = %q, want %q", got, want)
	}
	// Path length 1: the issuing CA sits between it and device certificates.
	if !cert.IsCA || cert.MaxPathLen != 1 {
		t.Errorf("want a CA with pathlen 1, got IsCA=%v MaxPathLen=%d zero=%v", cert.IsCA, cert.MaxPathLen, cert.MaxPathLenZero)
	}
	if k, ok := cert.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 3072 {
		t.Errorf("CA key is %T, want RSA 3072", cert.PublicKey)
	}
	if years := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24 / 365; years < 9.99 || years > 10.01 {
		t.Errorf("CA validity %.2f years, want 10", years)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}

	again, err := LoadOrCreateCA(ctx, e.settings, e.sealer, tenantA, "renamed", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !again.Certificate().Equal(cert) {
		t.Error("second load created a new CA instead of opening the stored one")
	}
	if e.cas[tenantB].Certificate().Equal(cert) {
		t.Error("two tenants share a CA")
	}
	opened, err := OpenCA(ctx, e.settings, e.sealer, tenantA, "renamed")
	if err != nil || !opened.Certificate().Equal(cert) || !opened.issuer.cert.Equal(ca.issuer.cert) {
		t.Errorf("OpenCA did not open the stored CA and issuer: %v", err)
	}
	if _, err := OpenCA(ctx, e.settings, e.sealer, "tenant-c", "C"); !errors.Is(err, ErrNoCA) {
		t.Errorf("OpenCA of a tenant without a CA: %v, want ErrNoCA", err)
	}
	if _, err := e.settings.Get(ctx, caSettingKey("tenant-c")); err == nil {
		t.Error("OpenCA created a CA")
	}
	if has, err := HasCA(ctx, e.settings, "tenant-c"); has || err != nil {
		t.Errorf("HasCA of a tenant without a CA: %v, %v", has, err)
	}
	if has, err := HasCA(ctx, e.settings, tenantA); !has || err != nil {
		t.Errorf("HasCA of a tenant with a CA: %v, %v", has, err)
	}

	raw, err := e.settings.Get(ctx, caSettingKey(tenantA))
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, pkcs8) || bytes.Contains(raw, ca.key.D.Bytes()) {
		t.Error("CA key is stored in clear")
	}
	// The sealed key is bound to its tenant: copied to another, it does not open.
	if err := e.settings.Put(ctx, caSettingKey("tenant-c"), raw); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(ctx, e.settings, e.sealer, "tenant-c", "C", time.Now()); err == nil {
		t.Error("a CA copied to another tenant opened")
	}
}

func TestLoadOrCreateCARace(t *testing.T) {
	e := newTestEnv(t)
	const nodes = 4
	certs := make([]*x509.Certificate, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			ca, err := LoadOrCreateCA(context.Background(), e.settings, e.sealer, "tenant-race", "Race", time.Now())
			errs[i] = err
			if err == nil {
				certs[i] = ca.Certificate()
			}
		})
	}
	wg.Wait()
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		if !certs[i].Equal(certs[0]) {
			t.Fatalf("node %d got a different CA than node 0", i)
		}
	}
}

func TestCACommonNameIsBounded(t *testing.T) {
	cn := caCommonName(strings.Repeat("é", 100))
	if n := len([]rune(cn)); n != maxCNRunes {
		t.Errorf("CN has %d characters, want %d", n, maxCNRunes)
	}
}

func TestIssuingCA(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	ca := e.cas[tenantA]
	issuer := ca.issuer.cert
	if k, ok := issuer.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("issuing CA key is %T, want P-256", issuer.PublicKey)
	}
	if !issuer.IsCA || !issuer.MaxPathLenZero || issuer.CheckSignatureFrom(ca.cert) != nil || !issuer.NotAfter.Equal(ca.cert.NotAfter) {
		t.Error("want an issuing CA with pathlen 0, issued by the tenant CA and expiring with it")
	}
	again, err := LoadOrCreateCA(ctx, e.settings, e.sealer, tenantA, "Tenant "+tenantA, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !again.issuer.cert.Equal(issuer) {
		t.Error("second load created a new issuing CA")
	}
	raw, err := e.settings.Get(ctx, issuerSettingKey(tenantA))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, ca.issuer.key.D.Bytes()) {
		t.Error("issuing CA key is stored in clear")
	}

	// Certificates the tenant CA signed itself, before issuing CAs, still
	// verify and renew.
	key := rsaKey(t, 2048)
	legacy, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(42), Subject: subject("legacy").Subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(legacy)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Roots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("a certificate of the tenant CA itself no longer verifies: %v", err)
	}
	if err := recordIssued(ctx, e.settings, tenantA, cert, "enrol-legacy"); err != nil {
		t.Fatal(err)
	}
	d := renewer(t, cert, key)
	if r := d.enrol(t, e.url(tenantA), ca.cert, d.request(t, e.raCert(tenantA), scep.RenewalReq, subject("legacy"), "")); r.status != scep.SUCCESS {
		t.Fatalf("renewing a certificate of the tenant CA itself: %s %s", r.status, r.failInfo)
	}
}

// The RA chains to the tenant's anchors too, but must never pass for a
// device identity. (The profile signer has no extended key usage, as devices
// expect of profile signatures; its key never leaves the server's memory,
// and the MDM endpoints take only certificates bound to an enrolment.)
func TestRAIsNoIdentity(t *testing.T) {
	e := newTestEnv(t)
	ra, _ := e.getCACert(t, tenantA)
	if _, err := ra.Verify(x509.VerifyOptions{Roots: e.cas[tenantA].Roots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the RA certificate verifies for client authentication")
	}
}

// TestDeviceCertificateChainsToGetCACert: whoever knows the tenant by its
// GetCACert answer verifies a device certificate with the chain its CertRep
// carried: the certificate, then the issuing CA the tenant CA certified.
func TestDeviceCertificateChainsToGetCACert(t *testing.T) {
	e := newTestEnv(t)
	_, published := get(t, e.url(tenantA)+"?operation=GetCACert")
	caCerts, err := scep.CACerts(published)
	if err != nil {
		t.Fatal(err)
	}
	ra, ca := e.getCACert(t, tenantA)
	d := newDevice(t, rsaKey(t, 2048))
	r := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, scep.PKCSReq, subject("d"), e.challenge(tenantA, "enrol-chain")))
	if r.status != scep.SUCCESS {
		t.Fatalf("%s %s", r.status, r.failInfo)
	}
	if len(r.certs) != 2 || !r.certs[0].Equal(r.cert) || !r.certs[1].Equal(e.cas[tenantA].issuer.cert) {
		t.Fatalf("the CertRep holds %d certificates; want the device's, then the issuing CA", len(r.certs))
	}
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca)
	for _, c := range append(caCerts, r.certs[1:]...) {
		if !c.Equal(ca) {
			intermediates.AddCert(c)
		}
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := r.cert.Verify(opts); err != nil {
		t.Fatalf("the device certificate does not chain to the CA of GetCACert: %v", err)
	}
}
