package scep

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLoadOrCreateCA(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	ca := e.cas[tenantA]
	cert := ca.Certificate()

	if got, want := cert.Subject.CommonName, "Steward Device CA Tenant tenant-a"; got != want {
		t.Errorf("CN = %q, want %q", got, want)
	}
	if !cert.IsCA || !cert.MaxPathLenZero || cert.MaxPathLen != 0 {
		t.Errorf("want a CA with pathlen 0, got IsCA=%v MaxPathLen=%d zero=%v", cert.IsCA, cert.MaxPathLen, cert.MaxPathLenZero)
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
